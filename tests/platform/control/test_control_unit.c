/* Unit tests of rp-control's pure logic, linked from the control plane's own sources: the
 * fail-closed promotion gates (seed FM-PR-01), last-known-good selection over a promotion
 * ledger (DR-01), and the cost arithmetic and windowing behind the cost guard (DR-07). These
 * decide what the drills observe, so they are held to hand-worked cases here. */
#include <criterion/criterion.h>
#include <string.h>

#include "rp_control.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A request and registry state that passes every gate; each test breaks one thing. */
static struct rp_gate_input good(void) {
  return (struct rp_gate_input){.registered_sha = SHA_A,
                                .approval = "CAB-42",
                                .evaluation_report = "s3://reports/eval.json",
                                .evidence_sha = SHA_A,
                                .lineage_claim = 1,
                                .training_run_id = "tr-1",
                                .training_run_found = 1,
                                .manifest_found = 1,
                                .code_digest = "c0de",
                                .config_digest = "c0f9"};
}

Test(gates, complete_evidence_passes) {
  struct rp_gate_input in = good();
  cr_expect_eq(rp_promotion_gates(&in), 0u);
  in.lineage_claim = -1; /* the claim is optional; the records decide */
  cr_expect_eq(rp_promotion_gates(&in), 0u);
}

Test(gates, each_missing_piece_fails_its_gate) {
  struct rp_gate_input in = good();
  in.approval = NULL;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_APPROVAL);
  in = good();
  in.approval = "";
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_APPROVAL);
  in = good();
  in.evaluation_report = "";
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_EVAL_REPORT);
  in = good();
  in.evidence_sha = SHA_B;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_ARTIFACT);
  in = good();
  in.evidence_sha = NULL;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_ARTIFACT);
}

Test(gates, no_evidence_at_all_fails_three_gates) {
  struct rp_gate_input in = good();
  in.approval = in.evaluation_report = in.evidence_sha = NULL;
  in.lineage_claim = -1;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_APPROVAL | RP_GATE_EVAL_REPORT | RP_GATE_ARTIFACT);
}

Test(gates, every_lineage_link_is_required) {
  struct rp_gate_input in = good();
  in.training_run_id = "";
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
  in = good();
  in.training_run_found = 0;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
  in = good();
  in.manifest_found = 0;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
  in = good();
  in.code_digest = "";
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
  in = good();
  in.config_digest = NULL;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
  in = good();
  in.lineage_claim = 0; /* the caller itself says the lineage is incomplete */
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_LINEAGE);
}

Test(gates, unregistered_version_fails_closed) {
  struct rp_gate_input in = good();
  in.registered_sha = NULL;
  in.training_run_id = NULL;
  in.training_run_found = in.manifest_found = 0;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_REGISTERED | RP_GATE_ARTIFACT | RP_GATE_LINEAGE);
}

Test(gates, lineage_missing_defect_skips_only_the_lineage_gate) {
  struct rp_gate_input in = good();
  in.training_run_id = NULL;
  in.training_run_found = in.manifest_found = 0;
  in.skip_lineage = 1;
  cr_expect_eq(rp_promotion_gates(&in), 0u);
  in.evidence_sha = SHA_B;
  cr_expect_eq(rp_promotion_gates(&in), RP_GATE_ARTIFACT);
}

Test(gates, names) {
  cr_expect_str_eq(rp_gate_name(RP_GATE_REGISTERED), "registered");
  cr_expect_str_eq(rp_gate_name(RP_GATE_APPROVAL), "approval");
  cr_expect_str_eq(rp_gate_name(RP_GATE_EVAL_REPORT), "evaluation_report");
  cr_expect_str_eq(rp_gate_name(RP_GATE_ARTIFACT), "artifact_sha256");
  cr_expect_str_eq(rp_gate_name(RP_GATE_LINEAGE), "lineage");
}

/* ---- last known good ---------------------------------------------------------------- */

static void lkg(const struct rp_ledger_entry *rows, size_t n, const char *want_cur,
                const char *want_lkg) {
  const char *cur = (const char *)1, *prev = (const char *)1;
  cr_assert_eq(rp_ledger_lkg(rows, n, &cur, &prev), 0);
  if (want_cur) cr_expect_str_eq(cur, want_cur);
  else cr_expect_null(cur);
  if (want_lkg) cr_expect_str_eq(prev, want_lkg);
  else cr_expect_null(prev);
}

Test(lkg, empty_and_single) {
  lkg(NULL, 0, NULL, NULL);
  struct rp_ledger_entry one[] = {{"promote", "A"}};
  lkg(one, 1, "A", NULL);
}

Test(lkg, promote_chain) {
  struct rp_ledger_entry rows[] = {{"promote", "A"}, {"promote", "B"}, {"promote", "C"}};
  lkg(rows, 2, "B", "A");
  lkg(rows, 3, "C", "B");
}

Test(lkg, rollback_pops_and_never_returns_to_the_bad_version) {
  struct rp_ledger_entry rows[] = {
      {"promote", "A"}, {"promote", "B"}, {"promote", "C"}, {"rollback", "B"}, {"rollback", "A"}};
  lkg(rows, 4, "B", "A");  /* C rolled back: the next rollback goes to A, not to C */
  lkg(rows, 5, "A", NULL); /* nothing before A */
}

Test(lkg, repromoting_the_active_version_is_not_a_new_entry) {
  struct rp_ledger_entry rows[] = {{"promote", "A"}, {"promote", "B"}, {"promote", "B"}};
  lkg(rows, 3, "B", "A");
}

Test(lkg, noop_rollback_row_changes_nothing) {
  /* What the rollback-noop defect writes: a rollback row naming the current version. The
   * replay agrees with the view (B stays active), and the LKG is still A. */
  struct rp_ledger_entry rows[] = {{"promote", "A"}, {"promote", "B"}, {"rollback", "B"}};
  lkg(rows, 3, "B", "A");
}

Test(lkg, rollback_to_unknown_version_restarts_the_stack) {
  struct rp_ledger_entry rows[] = {{"promote", "A"}, {"rollback", "Z"}, {"promote", "B"}};
  lkg(rows, 2, "Z", NULL);
  lkg(rows, 3, "B", "Z");
}

Test(lkg, rows_without_version_are_ignored) {
  struct rp_ledger_entry rows[] = {{"promote", "A"}, {"promote", NULL}, {"promote", "B"}};
  lkg(rows, 3, "B", "A");
}

/* ---- cost ----------------------------------------------------------------------------- */

Test(cost, spend_is_events_and_retrains_at_unit_cost) {
  cr_expect_float_eq(rp_cost_spend(0, 0, 0.5, 10), 0.0, 1e-12);
  cr_expect_float_eq(rp_cost_spend(1000, 2, 0.001, 25), 51.0, 1e-9);
  cr_expect_float_eq(rp_cost_spend(3, 1, 1, 10), 13.0, 1e-12);
}

Test(cost, breach_is_strictly_above_the_envelope) {
  cr_expect_eq(rp_cost_breached(2.0, 2.0), 0);
  cr_expect_eq(rp_cost_breached(2.000001, 2.0), 1);
  cr_expect_eq(rp_cost_breached(0.0, 0.0), 0);
  cr_expect_eq(rp_cost_breached(1.0, 0.0), 1);
}

Test(cost, closed_windows_are_whole_and_half_open) {
  const long long s = 1795460000000000LL, w = 3000000LL; /* 3 s windows in microseconds */
  cr_expect_eq(rp_cost_closed_windows(s, w, s), 0);
  cr_expect_eq(rp_cost_closed_windows(s, w, s + w - 1), 0);
  cr_expect_eq(rp_cost_closed_windows(s, w, s + w), 1); /* the end belongs to the next window */
  cr_expect_eq(rp_cost_closed_windows(s, w, s + 10 * w + 5), 10);
  cr_expect_eq(rp_cost_closed_windows(s, w, s - 1), 0);
  cr_expect_eq(rp_cost_closed_windows(s, 0, s + w), 0);
}
