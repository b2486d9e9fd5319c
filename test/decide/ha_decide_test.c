/*
 * ha_decide_test.c
 *		The HA decision table (extension/ha_decide.c) fed states, without
 *		servers: one case per row, the rows' order where two could match, and
 *		invariants checked over every combination of the facts that matter.
 *
 * Built and run by test/decide/run (scripts/check runs it).
 */
#include <stdio.h>
#include <string.h>

#include "ha_decide.h"

static int	failures = 0;
static int	checks = 0;

static void
expect(const char *what, const HaFacts *f, HaAction want)
{
	int			rule;
	HaAction	got = ha_decide(f, &rule);

	checks++;
	if (got != want)
	{
		failures++;
		printf("not ok %d - %s: got %s (row %d), want %s\n", checks, what, ha_action_name(got), rule,
			   ha_action_name(want));
	}
	else
		printf("ok %d - %s\n", checks, what);
}

static void
check(const char *what, int cond)
{
	checks++;
	if (!cond)
		failures++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", checks, what);
}

/* A healthy primary of term 3 with a standby that answers. */
static HaFacts
primary(void)
{
	HaFacts		f;

	memset(&f, 0, sizeof(f));
	f.role = HA_ROLE_PRIMARY;
	f.term = 3;
	f.node_id = 1;
	f.peer_answered = 1;
	f.peer_role = HA_ROLE_STANDBY;
	f.peer_term = 3;
	f.fence_order_ok = 1;
	f.auto_failover = 1;
	f.failure_threshold = 3;
	f.priority = 100;
	f.rejoin_due = 1;
	f.reenable_due = 1;
	f.initial_copy_done = 1;
	return f;
}

/* A healthy standby of term 3 whose primary answers. */
static HaFacts
standby(void)
{
	HaFacts		f = primary();

	f.role = HA_ROLE_STANDBY;
	f.node_id = 2;
	f.peer_role = HA_ROLE_PRIMARY;
	f.has_subscription = 1;
	f.subscription_enabled = 1;
	return f;
}

/* A standby whose primary failed `failure_threshold` checks. */
static HaFacts
standby_lost(void)
{
	HaFacts		f = standby();

	f.peer_answered = 0;
	f.peer_failures = 3;
	return f;
}

static void
test_primary_rows(void)
{
	HaFacts		f = primary();

	expect("a healthy primary does nothing", &f, HA_ACT_NONE);

	/* A node being set up as the standby still has the default row. */
	f.term = 0;
	f.peer_role = HA_ROLE_PRIMARY;
	f.peer_term = 1;
	expect("a node never set up (term 0) does not step down for a primary", &f, HA_ACT_NONE);
	f.witness_configured = 1;
	f.witness_answered_now = 1;
	f.witness_term = 1;
	f.isolated = 1;
	expect("nor for the witness, nor fences itself", &f, HA_ACT_NONE);

	f = primary();
	f.peer_role = HA_ROLE_PRIMARY;
	f.peer_term = 4;
	expect("a primary seeing a newer term's primary steps down", &f, HA_ACT_STEP_DOWN_FOR_PEER);
	f.peer_role = HA_ROLE_STANDBY;
	expect("a newer term on a standby is not a reason to step down", &f, HA_ACT_NONE);
	f.peer_role = HA_ROLE_PRIMARY;
	f.peer_answered = 0;
	expect("a peer's term from a failed check is not acted on", &f, HA_ACT_NONE);

	f = primary();
	f.witness_configured = 1;
	f.witness_term = 4;
	expect("the witness's newer term is acted on only when it answers", &f, HA_ACT_NONE);
	f.witness_answered_now = 1;
	expect("the witness knows a newer term: step down", &f, HA_ACT_STEP_DOWN_FOR_WITNESS);

	f = primary();
	f.witness_configured = 1;
	f.isolated = 1;
	expect("an isolated primary fences itself", &f, HA_ACT_SELF_FENCE);
	f.peer_role = HA_ROLE_PRIMARY;
	f.peer_term = 4;
	expect("stepping down comes before fencing", &f, HA_ACT_STEP_DOWN_FOR_PEER);

	f = primary();
	f.witness_configured = 1;
	f.self_fenced = 1;
	f.witness_term = 2;
	expect("self-fenced, the witness silent: stay fenced", &f, HA_ACT_NONE);
	f.witness_answered_now = 1;
	expect("self-fenced, the witness knows only older terms: lift", &f, HA_ACT_LIFT_SELF_FENCE);
	f.witness_term = 3;
	f.witness_primary_id = 2;
	expect("self-fenced, the witness names another primary of this term: stay fenced", &f, HA_ACT_NONE);
	f.witness_primary_id = 1;
	expect("self-fenced, the witness names this node for this term: lift", &f, HA_ACT_LIFT_SELF_FENCE);
	f.self_fenced = 0;
	expect("not fenced: nothing to lift", &f, HA_ACT_NONE);
}

static void
test_standby_rows(void)
{
	HaFacts		f = standby();

	expect("a healthy standby does nothing", &f, HA_ACT_NONE);
	f.peer_term = 4;
	expect("its primary moved to a newer term: follow", &f, HA_ACT_FOLLOW);

	f = standby();
	f.granted_term = 4;
	expect("a granted newer term: promote with it", &f, HA_ACT_PROMOTE_GRANTED);
	f.granted_term = 3;
	expect("a granted term that is not newer is not used", &f, HA_ACT_NONE);
	f.granted_term = 4;
	f.needs_rejoin = 1;
	f.peer_answered = 0;
	expect("a node waiting to rejoin never promotes", &f, HA_ACT_NONE);

	f = standby();
	f.needs_rejoin = 1;
	f.peer_term = 4;
	expect("waiting to rejoin, the new primary answers: rejoin", &f, HA_ACT_REJOIN);
	f.rejoin_due = 0;
	expect("the back-off is not over: wait", &f, HA_ACT_NONE);
	f.rejoin_due = 1;
	f.paused = 1;
	expect("paused: no automatic rejoin", &f, HA_ACT_NONE);
	f.paused = 0;
	f.auto_failover = 0;
	expect("auto_failover off: no automatic rejoin", &f, HA_ACT_NONE);
	f.auto_failover = 1;
	f.peer_term = 2;
	expect("a peer of an older term is not followed", &f, HA_ACT_NONE);
	f.peer_term = 3;
	f.peer_role = HA_ROLE_STANDBY;
	expect("a peer that is not primary is not followed", &f, HA_ACT_NONE);

	f = standby();
	f.subscription_enabled = 0;
	expect("a stopped subscription, its primary back: enable it", &f, HA_ACT_ENABLE_SUBSCRIPTION);
	f.reenable_due = 0;
	expect("not again before the interval", &f, HA_ACT_NONE);
	f.reenable_due = 1;
	f.peer_term = 4;
	expect("a primary of a newer term is followed, not re-enabled", &f, HA_ACT_FOLLOW);
}

static void
test_failover_rows(void)
{
	HaFacts		f = standby_lost();

	expect("the primary is lost, no witness: promote", &f, HA_ACT_PROMOTE);
	f.peer_failures = 2;
	expect("fewer failures than the threshold: wait", &f, HA_ACT_NONE);
	f = standby_lost();
	f.priority = 0;
	expect("priority 0: never promoted automatically", &f, HA_ACT_NONE);
	f = standby_lost();
	f.paused = 1;
	expect("paused: no failover", &f, HA_ACT_NONE);
	f = standby_lost();
	f.auto_failover = 0;
	expect("auto_failover off: no failover", &f, HA_ACT_NONE);
	f = standby_lost();
	f.has_subscription = 0;
	expect("no subscription: nothing to promote from", &f, HA_ACT_NONE);
	f = standby_lost();
	f.needs_rejoin = 1;
	expect("waiting to rejoin: no failover", &f, HA_ACT_NONE);
	f = standby_lost();
	f.initial_copy_done = 0;
	expect("the initial copy is unfinished: refuse", &f, HA_ACT_REFUSE_COPYING);

	f = standby_lost();
	f.witness_configured = 1;
	expect("with a witness: ask it for a term", &f, HA_ACT_REQUEST_TERM);
	f.grant_pending = 1;
	expect("a term request in flight: wait", &f, HA_ACT_NONE);
	f.grant_pending = 0;
	f.fence_order_ok = 0;
	expect("the fence order is wrong: refuse", &f, HA_ACT_REFUSE_FENCE_ORDER);
	f.initial_copy_done = 0;
	expect("the unfinished copy is said first", &f, HA_ACT_REFUSE_COPYING);
}

static void
test_other_roles(void)
{
	HaFacts		f = standby_lost();

	f.role = HA_ROLE_WITNESS;
	expect("a witness never acts", &f, HA_ACT_NONE);
	f.role = HA_ROLE_NONE;
	expect("a node whose state is unknown never acts", &f, HA_ACT_NONE);
}

/* Every row can be chosen, has a reason, and every action has a name. */
static void
test_table_shape(void)
{
	int			ok = 1;

	for (int i = 0; i < ha_rule_count; i++)
		if (ha_rules[i].when == NULL || ha_rules[i].why == NULL || ha_rules[i].why[0] == '\0')
			ok = 0;
	check("every row has a condition and a reason", ok);
	ok = 1;
	for (int a = HA_ACT_NONE; a <= HA_ACT_PROMOTE; a++)
		for (int b = a + 1; b <= HA_ACT_PROMOTE; b++)
			if (strcmp(ha_action_name((HaAction) a), ha_action_name((HaAction) b)) == 0 ||
				strcmp(ha_action_name((HaAction) a), "unknown") == 0)
				ok = 0;
	check("every action has a name of its own", ok);
}

/* The facts' booleans that rows read, and small ranges for the numbers. */
static void
set_bit_facts(HaFacts *f, unsigned bits)
{
	bool	   *flags[] = {&f->needs_rejoin, &f->has_subscription, &f->subscription_enabled,
		&f->self_fenced, &f->isolated, &f->peer_answered, &f->witness_configured,
		&f->witness_answered_now, &f->fence_order_ok, &f->grant_pending, &f->auto_failover,
	&f->paused, &f->rejoin_due, &f->reenable_due, &f->initial_copy_done};

	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		*flags[i] = (bits >> i) & 1;
}

/*
 * Over every combination: what must never happen.  A primary never
 * promotes, follows or rejoins; a standby never steps down or fences; no
 * automatic failover or rejoin while paused or with auto_failover off; no
 * promotion without the witness's term when a witness is configured, none
 * while the primary answers, none of a node waiting to rejoin; and the row
 * reported always carries the action returned.
 */
static void
test_invariants(void)
{
	HaRole		roles[] = {HA_ROLE_PRIMARY, HA_ROLE_STANDBY, HA_ROLE_WITNESS, HA_ROLE_NONE};
	HaRole		peer_roles[] = {HA_ROLE_PRIMARY, HA_ROLE_STANDBY, HA_ROLE_NONE};
	long		cases = 0;
	long		bad = 0;

	for (int r = 0; r < 4; r++)
		for (int pr = 0; pr < 3; pr++)
			for (unsigned bits = 0; bits < (1u << 15); bits++)
				for (int pt = 2; pt <= 4; pt++)
					for (int wt = 2; wt <= 4; wt += 2)
						for (int gt = 0; gt <= 4; gt += 4)
							for (int fails = 0; fails <= 3; fails += 3)
							{
								HaFacts		f = primary();
								HaAction	a;
								int			rule;
								int			violated = 0;

								f.role = roles[r];
								f.peer_role = peer_roles[pr];
								set_bit_facts(&f, bits);
								f.peer_term = pt;
								f.witness_term = wt;
								f.granted_term = gt;
								f.peer_failures = f.peer_answered ? 0 : fails;
								a = ha_decide(&f, &rule);
								cases++;
								if (f.role == HA_ROLE_PRIMARY &&
									(a == HA_ACT_PROMOTE || a == HA_ACT_PROMOTE_GRANTED || a == HA_ACT_FOLLOW ||
									 a == HA_ACT_REJOIN || a == HA_ACT_REQUEST_TERM))
									violated = 1;
								if (f.role != HA_ROLE_PRIMARY &&
									(a == HA_ACT_STEP_DOWN_FOR_PEER || a == HA_ACT_STEP_DOWN_FOR_WITNESS ||
									 a == HA_ACT_SELF_FENCE || a == HA_ACT_LIFT_SELF_FENCE))
									violated = 1;
								if ((f.paused || !f.auto_failover) &&
									(a == HA_ACT_PROMOTE || a == HA_ACT_REQUEST_TERM || a == HA_ACT_REJOIN))
									violated = 1;
								if (f.witness_configured && a == HA_ACT_PROMOTE)
									violated = 1;
								if (f.peer_answered && (a == HA_ACT_PROMOTE || a == HA_ACT_REQUEST_TERM))
									violated = 1;
								if (f.needs_rejoin && (a == HA_ACT_PROMOTE || a == HA_ACT_PROMOTE_GRANTED ||
													   a == HA_ACT_REQUEST_TERM))
									violated = 1;
								if (f.self_fenced == 0 && a == HA_ACT_LIFT_SELF_FENCE)
									violated = 1;
								if (a != HA_ACT_NONE && (rule < 0 || ha_rules[rule].action != a))
									violated = 1;
								if (violated && bad++ < 5)
									printf("# violated by role %d peer role %d bits %x: %s\n",
										   f.role, f.peer_role, bits, ha_action_name(a));
							}
	printf("# %ld combinations\n", cases);
	check("no combination of facts breaks an invariant", bad == 0);
}

int
main(void)
{
	test_primary_rows();
	test_standby_rows();
	test_failover_rows();
	test_other_roles();
	test_table_shape();
	test_invariants();
	printf("1..%d\n", checks);
	return failures == 0 ? 0 : 1;
}
