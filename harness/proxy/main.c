/*
 * main.c - fpdrill-proxy, the fault proxy daemon: parse the routes and the
 * control address, run the library proxy (harness/proxy/fp_proxy.h) until
 * SIGTERM or SIGINT, then close every connection and exit 0.
 *
 *   fpdrill-proxy --control 127.0.0.1:18090 \
 *     --route redis=127.0.0.1:26379,127.0.0.1:16379 --route pg=...
 *
 * The signals are blocked before any thread starts and taken with sigwait()
 * here, so no handler ever runs inside the data path or the HTTP server.
 * Faults live only in memory: a restart drops them all, which is the safe
 * direction (the harness's revert then gets a 404, i.e. "already gone").
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/core/fp_log.h"
#include "harness/proxy/fp_proxy.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fpdrill-proxy [--control HOST:PORT] --route "
		"NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT... [--log-level "
		"error|warn|info|debug]\n"
		"  --control   HTTP control API address (default "
		"127.0.0.1:18090)\n"
		"  --route     repeatable; NAME is [A-Za-z0-9._-]\n"
		"API: GET /health, GET /routes, POST /faults, DELETE "
		"/faults/{id}, POST /reset (docs/injectors/tcp.fault.md)\n");
}

/* "name=listen,upstream" -> the three parts, split in a copy: argv is
 * left as given so /proc/PID/cmdline (which the stack matches before it
 * signals the daemon) shows the routes as typed. */
static int split_route(const char *arg, char *spec, size_t specsz,
		       char **name, char **listen, char **up)
{
	char *eq, *comma;

	if (strlen(arg) >= specsz)
		return -1;
	snprintf(spec, specsz, "%s", arg);
	eq = strchr(spec, '=');

	if (!eq)
		return -1;
	*eq = '\0';
	comma = strchr(eq + 1, ',');
	if (!comma)
		return -1;
	*comma = '\0';
	*name = spec;
	*listen = eq + 1;
	*up = comma + 1;
	return **name && **listen && **up ? 0 : -1;
}

static int parse_level(const char *s)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"route", required_argument, NULL, 'r'},
		{"log-level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *control = "127.0.0.1:18090";
	struct fp_proxy *p = NULL;
	struct fp_err err;
	sigset_t sigs;
	int o, sig = 0, nroutes = 0, lvl;

	fp_err_clear(&err);
	/* Parse first, so a usage error never binds a port. */
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			control = optarg;
			break;
		case 'r':
			nroutes++;
			break;
		case 'l':
			lvl = parse_level(optarg);
			if (lvl < 0) {
				usage(stderr);
				return 2;
			}
			fp_log_set_level(lvl);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || nroutes == 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (fp_proxy_new(control, &p, &err))
		goto fail;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char spec[512], *name, *listen, *up;

		if (o != 'r')
			continue;
		if (split_route(optarg, spec, sizeof spec, &name, &listen,
				&up)) {
			fprintf(stderr,
				"fpdrill-proxy: bad --route '%s' (want "
				"NAME=LISTEN_HOST:PORT,UPSTREAM_HOST:PORT)\n",
				optarg);
			fp_proxy_free(p);
			return 2;
		}
		if (fp_proxy_add_route(p, name, listen, up, &err))
			goto fail;
	}
	if (fp_proxy_start(p, &err))
		goto fail;
	FP_INFO("event=proxy_ready control=%s pid=%ld", control,
		(long)getpid());
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
		; /* no config to reload: routes come from the command line */
	FP_INFO("event=proxy_signal signal=%d", sig);
	fp_proxy_free(p);
	return 0;
fail:
	FP_ERROR("event=proxy_failed error=\"%s\"", err.msg);
	fp_proxy_free(p);
	return 1;
}
