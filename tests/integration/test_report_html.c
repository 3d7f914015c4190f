/*
 * test_report_html.c - report.html rendered by a real browser: headless
 * Chromium (/usr/bin/chromium, Debian package `chromium`, installed by
 * envs/local/install.sh) loads a generated report.html from file:// with
 * networking features off, and
 *   - --dump-dom must give back the three chart SVGs with their series
 *     paths, phase bands and labels and fault markers (proof the browser
 *     parsed the inline SVG as SVG, not as text), and the hostile title as
 *     text, never as a <script> element;
 *   - --screenshot must be a PNG that is not blank: it is decoded here
 *     (zlib + PNG unfiltering) and must hold many distinct colours, the
 *     chart colours among them.
 * A missing Chromium FAILS the test (never skips): a green run must mean a
 * browser really drew the report.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "harness/core/fp_fs.h"
#include "reports/fp_report.h"

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)
#define CHROME_TIMEOUT_S 25

static char tmp[64];

static int rm_entry(const char *p, const struct stat *st, int flag,
		    struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void setup(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/fp-html-it-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp));
}

static void teardown(void)
{
	nftw(tmp, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

TestSuite(report_html, .init = setup, .fini = teardown, .timeout = 60);

static const char *chromium_path(void)
{
	const char *p = getenv("FPDRILL_CHROMIUM");

	return p && *p ? p : "/usr/bin/chromium";
}

/* ------------------------------------------------------------ the bundle */

static void write_bundle(const char *dir)
{
	struct fp_report *r = fp_report_new();
	struct fp_inv_result *v;
	struct fp_err err = {0};
	char path[256];
	long long seq = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/ledger.tsv", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	/* 200 ev/s for 60 s from t = 5 s; a stall of 15 s from t = 20 s. */
	for (int s = 0; s < 60; s++)
		for (int i = 0; i < 200; i++) {
			long long in = 5 * SEC + s * SEC + (long long)i * SEC / 200;
			long long lat = s >= 15 && s < 30 ? (200 + i % 50 * 10) * MS
							  : (3 + i % 7) * MS;

			fprintf(f,
				"%lld\tevt-%lld\toriginal\t1\tload\ta\t1\th\t%lld\t"
				"%lld\t%lld\t202\taccepted\t\\N\t\\N\t\\N\t\\N\t\\N\n",
				seq, seq, in, in + MS / 2, in + lat);
			if (s >= 15 && s < 30 && i % 10 == 0)
				fprintf(f,
					"%lld\tevt-%lld\tretry\t2\tload\ta\t1\th\t"
					"%lld\t%lld\t%lld\t202\taccepted\t\\N\t\\N"
					"\t\\N\t\\N\t\\N\n",
					seq, seq, in + SEC, in + SEC,
					in + SEC + 4 * MS);
			seq++;
		}
	fclose(f);
	snprintf(path, sizeof path, "%s/samples.tsv", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("t_s\tseries\tvalue\n", f);
	for (int i = 0; i < 160; i++) {
		double t = i * 0.5;
		double lag = t >= 20 && t < 40	 ? (t - 20) * 300
			     : t >= 40 && t < 52 ? (52 - t) * 500
						 : 3;

		fprintf(f, "%.3f\tdecision_group_lag\t%g\n", t, lag);
	}
	fclose(f);

	fp_report_set(&r->run_id, "r-browser");
	fp_report_set(&r->drill_id, "DR-03");
	fp_report_set(&r->drill_title, "Lag spike <script>alert(1)</script>");
	fp_report_set(&r->env_name, "local");
	fp_report_set(&r->env_class, "local");
	fp_report_set(&r->verdict_reason, "no_duplicate_decisions violated");
	r->started_wall_ns = INT64_C(1795458220551000000);
	r->ended_wall_ns = r->started_wall_ns + 80 * SEC;
	r->verdict = FP_VERDICT_FAIL;
	r->exit_code = 1;
	v = fp_report_add_invariant(r, "no_duplicate_decisions");
	v->status = FP_STATUS_FAIL;
	v->count = 3;
	fp_inv_add_example(v, "evt-17");
	fp_report_add_bound(r, "lag_recovery", "60s", "12.4s", 1);
	fp_report_add_timeline(r, 0, r->started_wall_ns, "phase", "warmup",
			       "start");
	fp_report_add_timeline(r, 5 * SEC, 0, "phase", "warmup", "end");
	fp_report_add_timeline(r, 5 * SEC, 0, "phase", "steady", "start");
	fp_report_add_timeline(r, 20 * SEC, 0, "fault", "consumer_pause",
			       "group=decider");
	fp_report_add_timeline(r, 40 * SEC, 0, "revert", "consumer_pause", NULL);
	fp_report_add_timeline(r, 65 * SEC, 0, "phase", "steady", "end");
	fp_report_add_timeline(r, 65 * SEC, 0, "phase", "cooldown", "start");
	fp_report_add_timeline(r, 80 * SEC, 0, "phase", "cooldown", "end");
	r->load = json_pack("{s:f,s:i}", "planned_rate", 200.0, "sent", 12000);
	cr_assert_eq(fp_bundle_write(r, dir, NULL, &err), FP_OK, "%s", err.msg);
	fp_report_free(r);
}

/* ---------------------------------------------------------- the browser */

/* Run Chromium with argv, stdout to out_path, stderr to a log; fails the
 * test on a non-zero exit or after CHROME_TIMEOUT_S (then the whole
 * process group this child leads is killed, and nothing else). */
static void run_chromium(const char *const *extra, const char *out_path)
{
	char udd[128], log[128], arg_udd[160];
	const char *argv[32];
	size_t n = 0;
	pid_t pid;
	int status = 0;
	time_t t0 = time(NULL);

	cr_assert_eq(access(chromium_path(), X_OK), 0,
		     "%s is missing (%s): install the Debian package chromium "
		     "(envs/local/install.sh lists it)",
		     chromium_path(), strerror(errno));
	/* A fresh profile per run: no cached state, no first-run UI. */
	snprintf(udd, sizeof udd, "%s/profile-XXXXXX", tmp);
	cr_assert_not_null(mkdtemp(udd));
	snprintf(arg_udd, sizeof arg_udd, "--user-data-dir=%s", udd);
	snprintf(log, sizeof log, "%s/chromium.log", tmp);
	argv[n++] = chromium_path();
	argv[n++] = "--headless";
	argv[n++] = "--no-sandbox";
	argv[n++] = "--disable-gpu";
	argv[n++] = "--disable-quic";
	argv[n++] = "--no-first-run";
	argv[n++] = "--disable-background-networking";
	argv[n++] = "--disable-component-update";
	argv[n++] = "--disable-sync";
	argv[n++] = "--disable-dev-shm-usage";
	argv[n++] = "--hide-scrollbars";
	argv[n++] = arg_udd;
	for (; *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		setpgid(0, 0);
		if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (time(NULL) - t0 > CHROME_TIMEOUT_S) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("chromium did not finish in %d s (log: %s)",
				       CHROME_TIMEOUT_S, log);
		}
		usleep(50 * 1000);
	}
	/* Renderer / GPU helpers of this run share its process group. */
	kill(-pid, SIGKILL);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "chromium failed (status %d); see %s", status, log);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0, off = 0, l = strlen(needle);
	const char *p;

	while ((p = strstr(hay + off, needle)) != NULL) {
		n++;
		off = (size_t)(p - hay) + l;
	}
	return n;
}

/* noinline: inlined, GCC 12 -O2 wrongly sees the result as pointing into
 * this frame (-Wdangling-pointer false positive). */
__attribute__((noinline)) static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;
	int rc = fp_read_file(path, (size_t)64 << 20, &data, &len, NULL);

	cr_assert_eq(rc, FP_OK, "cannot read %s", path);
	return data;
}

/* ------------------------------------------------------------ PNG decode */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

	return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

struct image {
	uint32_t w, h;
	unsigned bpp;            /* 3 (RGB) or 4 (RGBA) */
	unsigned char *px;       /* h * w * bpp */
};

/* Enough of PNG for Chromium's screenshots: 8-bit RGB or RGBA, not
 * interlaced, every filter type. */
static void png_decode(const char *path, struct image *im)
{
	char *data = NULL;
	size_t len = 0, pos = 8, zlen = 0, rawlen, stride;
	unsigned char *z = NULL, *raw;
	const unsigned char *d;
	uLongf outlen;

	cr_assert_eq(fp_read_file(path, (size_t)64 << 20, &data, &len, NULL),
		     FP_OK, "cannot read %s", path);
	d = (const unsigned char *)data;
	cr_assert(len > 33 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0,
		  "%s is not a PNG", path);
	memset(im, 0, sizeof *im);
	while (pos + 12 <= len) {
		uint32_t clen = be32(d + pos);
		const unsigned char *type = d + pos + 4, *body = d + pos + 8;

		cr_assert_leq(pos + 12 + clen, len, "truncated PNG chunk");
		if (memcmp(type, "IHDR", 4) == 0) {
			im->w = be32(body);
			im->h = be32(body + 4);
			cr_assert_eq(body[8], 8, "bit depth %d", body[8]);
			cr_assert(body[9] == 2 || body[9] == 6, "colour type %d",
				  body[9]);
			cr_assert_eq(body[12], 0, "interlaced PNG");
			im->bpp = body[9] == 6 ? 4 : 3;
		} else if (memcmp(type, "IDAT", 4) == 0) {
			z = realloc(z, zlen + clen);
			cr_assert_not_null(z);
			memcpy(z + zlen, body, clen);
			zlen += clen;
		} else if (memcmp(type, "IEND", 4) == 0) {
			break;
		}
		pos += 12 + clen;
	}
	cr_assert(im->w && im->h && zlen, "PNG without IHDR or IDAT");
	stride = (size_t)im->w * im->bpp;
	rawlen = (stride + 1) * im->h;
	raw = malloc(rawlen);
	im->px = malloc(stride * im->h);
	cr_assert(raw && im->px);
	outlen = rawlen;
	cr_assert_eq(uncompress(raw, &outlen, z, zlen), Z_OK, "bad zlib data");
	cr_assert_eq(outlen, rawlen);
	for (uint32_t y = 0; y < im->h; y++) {
		const unsigned char *in = raw + y * (stride + 1) + 1;
		unsigned char *o = im->px + y * stride;
		const unsigned char *up = y ? o - stride : NULL;
		int ft = raw[y * (stride + 1)];

		for (size_t x = 0; x < stride; x++) {
			int a = x >= im->bpp ? o[x - im->bpp] : 0;
			int b = up ? up[x] : 0;
			int c = up && x >= im->bpp ? up[x - im->bpp] : 0;
			int v = in[x];

			switch (ft) {
			case 0: break;
			case 1: v += a; break;
			case 2: v += b; break;
			case 3: v += (a + b) / 2; break;
			case 4: v += paeth(a, b, c); break;
			default: cr_assert_fail("PNG filter %d", ft);
			}
			o[x] = (unsigned char)v;
		}
	}
	free(raw);
	free(z);
	free(data);
}

/* Distinct RGB colours, counted up to cap (a small open-addressing set). */
static size_t distinct_colours(const struct image *im, size_t cap,
			       int *has_fault_red)
{
	enum { SLOTS = 8192 };
	static uint32_t set[SLOTS];
	size_t n = 0;

	memset(set, 0, sizeof set);
	*has_fault_red = 0;
	for (size_t i = 0; i < (size_t)im->w * im->h && n < cap; i++) {
		const unsigned char *p = im->px + i * im->bpp;
		uint32_t c = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
		uint32_t k = c + 1, h = (c * 2654435761u) % SLOTS;

		/* #cf222e, the fault marker and "fail" colour (tolerating
		 * antialiasing). */
		if (abs(p[0] - 0xcf) < 24 && abs(p[1] - 0x22) < 24 &&
		    abs(p[2] - 0x2e) < 24)
			*has_fault_red = 1;
		while (set[h] && set[h] != k)
			h = (h + 1) % SLOTS;
		if (!set[h]) {
			set[h] = k;
			n++;
		}
	}
	return n;
}

/* ------------------------------------------------------------------ tests */

Test(report_html, chromium_parses_and_draws_the_charts)
{
	char bundle[128], url[256], dom[128], png[128], arg_shot[160];
	struct image im;
	int red = 0;
	size_t colours;
	char *text;

	snprintf(bundle, sizeof bundle, "%s/bundle", tmp);
	cr_assert_eq(mkdir(bundle, 0755), 0);
	write_bundle(bundle);
	snprintf(url, sizeof url, "file://%s/report.html", bundle);

	/* 1. The DOM the browser built. */
	snprintf(dom, sizeof dom, "%s/dom.html", tmp);
	run_chromium((const char *const[]){"--dump-dom", url, NULL}, dom);
	text = slurp(dom);
	cr_assert_eq(count(text, "<svg class=\"chart\""), 3, "%.2000s", text);
	cr_assert(strstr(text, "id=\"chart-rate\"") &&
		  strstr(text, "id=\"chart-latency\"") &&
		  strstr(text, "id=\"chart-lag\""));
	/* 2 rate + 4 latency + 1 lag series, each a path with points. */
	cr_assert_eq(count(text, "<path class=\"line\""), 7);
	cr_assert_geq(count(text, " d=\"M"), 7);
	/* 3 phases on each chart, with their labels; 1 fault, 1 revert. */
	cr_assert_eq(count(text, "<rect class=\"band\""), 9);
	cr_assert_eq(count(text, ">warmup</text>"), 3);
	cr_assert_eq(count(text, ">steady</text>"), 3);
	cr_assert_eq(count(text, ">cooldown</text>"), 3);
	cr_assert_eq(count(text, "class=\"marker fault\""), 3);
	cr_assert_eq(count(text, "class=\"marker revert\""), 3);
	cr_assert_eq(count(text, "<title"), 1 + 3 + 7 + 9 + 6, "%zu",
		     count(text, "<title"));
	/* The title is text in the DOM, not a script element. */
	cr_assert_null(strstr(text, "<script"));
	cr_assert_not_null(strstr(text, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	free(text);

	/* 2. What it drew. */
	snprintf(png, sizeof png, "%s/shot.png", tmp);
	snprintf(arg_shot, sizeof arg_shot, "--screenshot=%s", png);
	run_chromium((const char *const[]){arg_shot, "--window-size=1200,2400",
					   url, NULL},
		     dom);
	png_decode(png, &im);
	cr_assert_eq(im.w, 1200);
	cr_assert_eq(im.h, 2400);
	colours = distinct_colours(&im, 100000, &red);
	cr_assert_gt(colours, 64, "only %zu colours: a blank page?", colours);
	cr_assert(red, "no fault-marker / fail red anywhere in the screenshot");
	free(im.px);
}
