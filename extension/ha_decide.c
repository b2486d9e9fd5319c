/*
 * ha_decide.c
 *		The HA worker's decision table, in the manner of pg_auto_failover's
 *		KeeperFSM: every transition this node can make by itself, one row
 *		each, in one screen.
 *
 * The worker gathers HaFacts after every event (a health check of the peer
 * ended, the witness answered a report or a term request), asks ha_decide()
 * and performs the action; then it reloads its state and asks again, so a
 * step-down followed by a rejoin happens in one round.  Requests from an
 * operator (switchover, ha_failover(), pause) are not decisions: they are
 * served as asked.  No row reads anything but the facts, so the table is
 * tested without servers (test/decide).
 */
#include <stddef.h>

#include "ha_decide.h"

/* ---- conditions ---- */

/* failover and rejoin happen by themselves only when allowed and not paused */
static bool
automatic(const HaFacts *f)
{
	return f->auto_failover && !f->paused;
}

/*
 * Term 0: never set up. ha_setup() chooses this node's role, and a step-down
 * decided here would end ha_setup('standby')'s own session halfway.
 */
static bool
never_set_up(const HaFacts *f)
{
	return f->term == 0;
}

static bool
peer_is_newer_primary(const HaFacts *f)
{
	return f->peer_answered && f->peer_role == HA_ROLE_PRIMARY && f->peer_term > f->term;
}

static bool
witness_knows_newer_term(const HaFacts *f)
{
	return f->witness_answered_now && f->witness_term > f->term;
}

static bool
witness_confirms_term(const HaFacts *f)
{
	return f->self_fenced && f->witness_answered_now &&
		(f->witness_term < f->term || f->witness_primary_id == f->node_id);
}

static bool
granted_newer_term(const HaFacts *f)
{
	return !f->needs_rejoin && f->granted_term > f->term;
}

static bool
primary_moved_on(const HaFacts *f)
{
	return !f->needs_rejoin && peer_is_newer_primary(f);
}

static bool
rejoin_possible(const HaFacts *f)
{
	return f->needs_rejoin && automatic(f) && f->rejoin_due && f->peer_answered &&
		f->peer_role == HA_ROLE_PRIMARY && f->peer_term >= f->term;
}

static bool
subscription_stopped(const HaFacts *f)
{
	return !f->needs_rejoin && f->has_subscription && !f->subscription_enabled &&
		f->peer_answered && f->peer_role == HA_ROLE_PRIMARY && f->peer_term == f->term &&
		f->reenable_due;
}

static bool
isolated(const HaFacts *f)
{
	return f->isolated;
}

/* the primary failed failure_threshold checks, and this standby may replace it */
bool
ha_primary_lost(const HaFacts *f)
{
	return !f->needs_rejoin && f->has_subscription && !f->peer_answered &&
		f->peer_failures >= f->failure_threshold && automatic(f) && f->priority > 0;
}

static bool
primary_lost_while_copying(const HaFacts *f)
{
	return ha_primary_lost(f) && !f->initial_copy_done;
}

static bool
primary_lost_fence_order_wrong(const HaFacts *f)
{
	return ha_primary_lost(f) && f->witness_configured && !f->fence_order_ok;
}

static bool
primary_lost_term_requested(const HaFacts *f)
{
	return ha_primary_lost(f) && f->witness_configured && f->grant_pending;
}

static bool
primary_lost_with_witness(const HaFacts *f)
{
	return ha_primary_lost(f) && f->witness_configured;
}

/* ---- the table: first match wins ---- */

const HaRule ha_rules[] = {
	/* a primary */
	{HA_ROLE_PRIMARY, never_set_up, HA_ACT_NONE,
	"never set up (term 0): ha_setup() chooses the role, nothing is decided here"},
	{HA_ROLE_PRIMARY, peer_is_newer_primary, HA_ACT_STEP_DOWN_FOR_PEER,
	"the peer is the primary of a newer term: step down, then rejoin it"},
	{HA_ROLE_PRIMARY, witness_knows_newer_term, HA_ACT_STEP_DOWN_FOR_WITNESS,
	"the witness granted a newer term to someone: step down"},
	{HA_ROLE_PRIMARY, isolated, HA_ACT_SELF_FENCE,
	"neither the standby nor the witness reached for fence_timeout: refuse every write"},
	{HA_ROLE_PRIMARY, witness_confirms_term, HA_ACT_LIFT_SELF_FENCE,
	"self-fenced, and the witness answers that this term is still ours: write again"},

	/* a standby */
	{HA_ROLE_STANDBY, granted_newer_term, HA_ACT_PROMOTE_GRANTED,
	"the witness granted us a term (durably): promote with exactly it"},
	{HA_ROLE_STANDBY, primary_moved_on, HA_ACT_FOLLOW,
	"our primary moved to a newer term (a switchover): follow it"},
	{HA_ROLE_STANDBY, rejoin_possible, HA_ACT_REJOIN,
	"waiting to rejoin, the back-off is over and the new primary answers: rejoin"},
	{HA_ROLE_STANDBY, subscription_stopped, HA_ACT_ENABLE_SUBSCRIPTION,
	"an error disabled the subscription, and its primary is back in the same term: enable it"},
	{HA_ROLE_STANDBY, primary_lost_while_copying, HA_ACT_REFUSE_COPYING,
	"the primary is lost but the initial copy is unfinished: this node lacks rows, refuse"},
	{HA_ROLE_STANDBY, primary_lost_fence_order_wrong, HA_ACT_REFUSE_FENCE_ORDER,
	"the primary is lost but it may not have fenced itself yet (settings): refuse"},
	{HA_ROLE_STANDBY, primary_lost_term_requested, HA_ACT_NONE,
	"the primary is lost and a term request is in flight: wait for its answer"},
	{HA_ROLE_STANDBY, primary_lost_with_witness, HA_ACT_REQUEST_TERM,
	"the primary is lost: ask the witness for a new term"},
	{HA_ROLE_STANDBY, ha_primary_lost, HA_ACT_PROMOTE,
	"the primary is lost and there is no witness: promote"},
};

const int	ha_rule_count = sizeof(ha_rules) / sizeof(ha_rules[0]);

HaAction
ha_decide(const HaFacts *f, int *rule)
{
	for (int i = 0; i < ha_rule_count; i++)
	{
		if (ha_rules[i].role == f->role && ha_rules[i].when(f))
		{
			if (rule != NULL)
				*rule = i;
			return ha_rules[i].action;
		}
	}
	if (rule != NULL)
		*rule = -1;
	return HA_ACT_NONE;
}

const char *
ha_action_name(HaAction action)
{
	switch (action)
	{
		case HA_ACT_NONE:
			return "none";
		case HA_ACT_STEP_DOWN_FOR_PEER:
			return "step_down_for_peer";
		case HA_ACT_STEP_DOWN_FOR_WITNESS:
			return "step_down_for_witness";
		case HA_ACT_SELF_FENCE:
			return "self_fence";
		case HA_ACT_LIFT_SELF_FENCE:
			return "lift_self_fence";
		case HA_ACT_PROMOTE_GRANTED:
			return "promote_granted";
		case HA_ACT_FOLLOW:
			return "follow";
		case HA_ACT_REJOIN:
			return "rejoin";
		case HA_ACT_ENABLE_SUBSCRIPTION:
			return "enable_subscription";
		case HA_ACT_REFUSE_COPYING:
			return "refuse_copying";
		case HA_ACT_REFUSE_FENCE_ORDER:
			return "refuse_fence_order";
		case HA_ACT_REQUEST_TERM:
			return "request_term";
		case HA_ACT_PROMOTE:
			return "promote";
	}
	return "unknown";
}
