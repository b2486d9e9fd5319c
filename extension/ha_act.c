/*
 * ha_act.c
 *		The HA worker's decisions carried out: after every event, the facts
 *		are gathered, the decision table (ha_decide.c) chooses an action, and
 *		it is performed here; then the facts are gathered again, since one
 *		transition can enable the next (a step-down, then a rejoin).
 *
 * This file holds what the actions need between rounds: the outage's start
 * (for the failover event's figure), the rejoin's back-off, the subscription
 * re-enable timer, and the once-per-outage alerts.  It decides nothing.
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "ha_act.h"
#include "ha_decide.h"
#include "ha_demote.h"
#include "ha_events.h"
#include "ha_promote.h"
#include "ha_rejoin.h"
#include "ha_replication.h"
#include "ha_timing.h"
#include "ha_witness.h"
#include "ha_guc.h"

/*
 * At most this many actions follow one event: a step-down, its rejoin, and
 * room to spare.  An action that fails is not tried again in the same round.
 */
#define HA_MAX_ACTIONS_PER_EVENT 4

static TimestampTz outage_started = 0;	/* the first failed check of this outage */
static bool detection_reported = false;
static bool copy_refusal_reported = false;	/* once per outage */
static bool order_refusal_reported = false; /* once per outage */
static char copy_problem[HA_MSG_LEN];	/* why the initial copy holds a failover back */

/* the automatic rejoin: not before rejoin_next_at; refusals back off */
static TimestampTz rejoin_next_at = 0;
static int	rejoin_failures = 0;
static char rejoin_last_msg[HA_MSG_LEN];

static TimestampTz last_reenable = 0;

/* ---- the facts ---- */

/* What the actions need beyond the facts: names, and the peer's last error. */
typedef struct Seen
{
	HaRemoteView peer;
	char		witness_primary[HA_NAME_LEN];
} Seen;

static void
gather_facts(HaFacts *f, Seen *seen, const HaWitnessNews *news, int64 granted_term)
{
	TimestampTz now = GetCurrentTimestamp();

	memset(f, 0, sizeof(*f));
	SpinLockAcquire(&ha_shared->mutex);
	seen->peer = ha_shared->peer;
	f->witness_term = ha_shared->witness.term;
	f->witness_primary_id = ha_shared->witness_primary_id;
	strlcpy(seen->witness_primary, ha_shared->witness_primary, HA_NAME_LEN);
	SpinLockRelease(&ha_shared->mutex);

	f->role = ha_local.role;
	f->term = ha_local.term;
	f->node_id = ha_local.node_id;
	f->needs_rejoin = ha_local.needs_rejoin;
	f->has_subscription = ha_local.sub_exists;
	f->subscription_enabled = ha_local.sub_enabled;

	f->peer_answered = seen->peer.reachable;
	f->peer_failures = seen->peer.consecutive_failures;
	f->peer_role = seen->peer.role;
	f->peer_term = seen->peer.term;

	f->witness_configured = ha_witness_configured();
	f->witness_answered_now = news != NULL && news->answered;
	f->fence_order_ok = ha_witness_order_ok();
	f->grant_pending = ha_witness_grant_pending();
	f->granted_term = granted_term;

	f->auto_failover = ha_auto_failover;
	f->paused = ha_local.paused;
	f->failure_threshold = ha_failure_threshold;
	f->priority = ha_priority;
	f->rejoin_due = now >= rejoin_next_at;
	f->reenable_due = last_reenable == 0 ||
		TimestampDifferenceExceeds(last_reenable, now, HA_SUBSCRIPTION_REENABLE_INTERVAL_MS);

	/* the facts that cost a query or a clock are found only where a row reads them */
	if (f->role == HA_ROLE_PRIMARY && f->witness_configured)
	{
		f->isolated = ha_witness_isolated();
		if (f->witness_answered_now)
			f->self_fenced = ha_witness_fenced_by_isolation();
	}
	f->initial_copy_done = true;
	if (f->role == HA_ROLE_STANDBY && ha_primary_lost(f))
		f->initial_copy_done = ha_initial_copy_done(copy_problem, sizeof(copy_problem));
}

/* ---- the actions ---- */

static char *
failover_reason(const Seen *seen)
{
	return psprintf("failover: primary %s unreachable for %d checks (%s)",
					ha_local.primary_name, seen->peer.consecutive_failures, seen->peer.last_error);
}

/* Promote after the primary was lost; the failover event measures the outage. */
static void
fail_over(const char *reason, int64 granted_term)
{
	char		msg[HA_MSG_LEN];
	double		total;

	if (!ha_promote(reason, false, false, granted_term, msg, sizeof(msg)))
		return;
	total = (double) (GetCurrentTimestamp() - (outage_started ? outage_started : GetCurrentTimestamp())) / 1000.0;
	ha_record_event("failover", psprintf("%s; %.0f ms from the first failed check to writable", msg, total),
					total, NULL);
}

static void
enable_subscription(void)
{
	last_reenable = GetCurrentTimestamp();
	ha_record_event("alert", "the subscription was disabled by an error (see the server log); "
					"enabling it again since its primary is back in the same term", -1, NULL);
	ha_enable_subscription();
}

static void
alert_once(bool *reported, const char *text)
{
	if (*reported)
		return;
	*reported = true;
	ha_record_event("alert", text, -1, NULL);
}

static void
perform(HaAction action, const HaFacts *f, const Seen *seen)
{
	const HaRemoteView *peer = &seen->peer;
	const char *wprimary = seen->witness_primary[0] ? seen->witness_primary : "unknown";
	char		msg[HA_MSG_LEN];

	switch (action)
	{
		case HA_ACT_NONE:
			break;
		case HA_ACT_STEP_DOWN_FOR_PEER:
			if (ha_demote(peer->term, peer->name, peer->node_id, true,
						  psprintf("peer %s is the primary of newer term " INT64_FORMAT, peer->name, peer->term)))
				ha_rejoin_attempted(true, false, NULL); /* a fresh start for the rejoin */
			break;
		case HA_ACT_STEP_DOWN_FOR_WITNESS:
			ha_demote(f->witness_term, wprimary, f->witness_primary_id, true,
					  psprintf("the witness knows newer term " INT64_FORMAT " (primary %s)",
							   f->witness_term, wprimary));
			break;
		case HA_ACT_SELF_FENCE:
			ha_witness_self_fence();
			break;
		case HA_ACT_LIFT_SELF_FENCE:
			ha_witness_lift_self_fence(psprintf("the witness is reachable again and term " INT64_FORMAT
												" is still this node's", f->term));
			break;
		case HA_ACT_PROMOTE_GRANTED:
			fail_over(psprintf("%s; term " INT64_FORMAT " granted by the witness",
							   failover_reason(seen), f->granted_term), f->granted_term);
			break;
		case HA_ACT_FOLLOW:
			ha_demote(peer->term, peer->name, peer->node_id, !f->has_subscription,
					  psprintf("following the primary %s into term " INT64_FORMAT, peer->name, peer->term));
			break;
		case HA_ACT_REJOIN:
			ha_rejoin_attempted(ha_rejoin(msg, sizeof(msg)), false, msg);
			break;
		case HA_ACT_ENABLE_SUBSCRIPTION:
			enable_subscription();
			break;
		case HA_ACT_REFUSE_COPYING:
			alert_once(&copy_refusal_reported, psprintf("no failover: %s", copy_problem));
			break;
		case HA_ACT_REFUSE_FENCE_ORDER:
			alert_once(&order_refusal_reported, psprintf("no failover: %s", ha_fence_order_problem()));
			break;
		case HA_ACT_REQUEST_TERM:
			ha_witness_request_grant();
			break;
		case HA_ACT_PROMOTE:
			fail_over(failover_reason(seen), 0);
			break;
	}
}

/*
 * Whether an action can change the facts: a transition or the subscription
 * switched on.  After a notice (a refusal's alert, a term request) nothing
 * changed that would make the table choose otherwise, so the round ends
 * instead of gathering the facts (a query, for the initial copy) again.
 */
static bool
changes_facts(HaAction action)
{
	return action != HA_ACT_REFUSE_COPYING && action != HA_ACT_REFUSE_FENCE_ORDER &&
		action != HA_ACT_REQUEST_TERM;
}

/*
 * Decide and act until the table has nothing more to do.  A granted term is
 * offered to the first decision only: the witness granted it for this
 * moment, and a failed promotion asks for a new one.
 */
static void
decide_and_act(const HaWitnessNews *news)
{
	HaAction	done[HA_MAX_ACTIONS_PER_EVENT];
	int64		granted = news ? news->granted_term : 0;

	for (int n = 0; n < HA_MAX_ACTIONS_PER_EVENT; n++)
	{
		HaFacts		f;
		Seen		seen;
		HaAction	action;
		int			rule;

		if (!ha_local.ext_present)
			return;
		gather_facts(&f, &seen, news, granted);
		granted = 0;
		action = ha_decide(&f, &rule);
		if (action == HA_ACT_NONE)
			return;
		for (int i = 0; i < n; i++)
			if (done[i] == action)
				return;
		ereport(DEBUG1,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("crawler_ha: %s: %s", ha_action_name(action), ha_rules[rule].why)));
		perform(action, &f, &seen);
		if (!changes_facts(action))
			return;
		done[n] = action;
	}
}

/* ---- the events ---- */

void
ha_act_on_peer_check(bool ok, TimestampTz started)
{
	HaRemoteView peer;

	SpinLockAcquire(&ha_shared->mutex);
	peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (ok)
	{
		if (detection_reported)
			ha_record_event("recovery", psprintf("peer %s answers again", peer.name), -1, NULL);
		detection_reported = false;
		outage_started = 0;
		copy_refusal_reported = false;
		order_refusal_reported = false;
	}
	else
	{
		if (outage_started == 0)
			outage_started = started;
		if (peer.consecutive_failures >= ha_failure_threshold && !detection_reported)
		{
			detection_reported = true;
			ha_record_event("detection",
							psprintf("peer %s failed %d consecutive checks: %s",
									 peer.name[0] ? peer.name : "(never seen)",
									 peer.consecutive_failures, peer.last_error),
							(double) (GetCurrentTimestamp() - outage_started) / 1000.0, NULL);
		}
	}
	decide_and_act(NULL);
}

void
ha_act_on_witness(const HaWitnessNews *news)
{
	if (news->answered || news->granted_term > 0 || news->isolated)
		decide_and_act(news);
}

void
ha_rejoin_attempted(bool ok, bool manual, const char *msg)
{
	int			delay_ms;

	if (ok)
	{
		rejoin_failures = 0;
		rejoin_next_at = 0;
		rejoin_last_msg[0] = '\0';
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->rejoin_problem[0] = '\0';
		SpinLockRelease(&ha_shared->mutex);
		return;
	}
	rejoin_failures++;
	delay_ms = Min(HA_REJOIN_BACKOFF_FIRST_MS << Min(rejoin_failures - 1, 5), HA_REJOIN_BACKOFF_MAX_MS);
	rejoin_next_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
	SpinLockAcquire(&ha_shared->mutex);
	snprintf(ha_shared->rejoin_problem, HA_MSG_LEN, "%s (attempt %d; the next in %d s)",
			 msg, rejoin_failures, delay_ms / 1000);
	SpinLockRelease(&ha_shared->mutex);
	if (manual || strcmp(msg, rejoin_last_msg) != 0)
		ha_record_event("rejoin_refused", msg, -1,
						psprintf("{\"attempt\": %d, \"retry_in_ms\": %d, \"manual\": %s}",
								 rejoin_failures, delay_ms, manual ? "true" : "false"));
	else
		ereport(LOG,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crawler_ha: rejoin attempt %d refused again: %s", rejoin_failures, msg)));
	strlcpy(rejoin_last_msg, msg, sizeof(rejoin_last_msg));
}
