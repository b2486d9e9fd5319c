/*
 * ha_decide.h
 *		What the HA worker does next, decided in one place: a pure function
 *		from what this node knows (its own state, the peer's last answer, the
 *		witness's, the settings and the timers) to one action.
 *
 * Plain C with no server headers: the extension builds it into the worker,
 * and test/decide builds it into a program that feeds it states.
 */
#ifndef HA_DECIDE_H
#define HA_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "ha_role.h"

/* Everything a decision depends on; the worker fills it before each one. */
typedef struct HaFacts
{
	/* this node, as its ha_state row says */
	HaRole		role;
	int64_t		term;
	int32_t		node_id;
	bool		needs_rejoin;
	bool		has_subscription;
	bool		subscription_enabled;
	bool		self_fenced;	/* fenced for isolation in its current term */
	bool		isolated;		/* with a witness: neither it nor the standby reached for fence_timeout */

	/* the peer, from its last health check */
	bool		peer_answered;	/* the last check succeeded */
	int			peer_failures;	/* failed checks in a row */
	HaRole		peer_role;
	int64_t		peer_term;

	/* the witness */
	bool		witness_configured;
	bool		witness_answered_now;	/* a report was answered just now */
	int64_t		witness_term;	/* from that answer */
	int32_t		witness_primary_id; /* from that answer; 0: none known */
	bool		fence_order_ok; /* fence_timeout below the promotion delay */
	bool		grant_pending;	/* a term request is in flight */
	int64_t		granted_term;	/* > 0: the witness granted this node that term */

	/* settings and timers */
	bool		auto_failover;
	bool		paused;
	int			failure_threshold;
	int			priority;		/* 0: never promoted automatically */
	bool		rejoin_due;		/* the rejoin's back-off has run out */
	bool		reenable_due;	/* the subscription may be enabled again */
	bool		initial_copy_done;	/* every table of the subscription is ready */
} HaFacts;

/* What the worker does; each is one transition or one notice. */
typedef enum HaAction
{
	HA_ACT_NONE,
	HA_ACT_STEP_DOWN_FOR_PEER,	/* demote: the peer is a newer term's primary */
	HA_ACT_STEP_DOWN_FOR_WITNESS,	/* demote: the witness knows a newer term */
	HA_ACT_SELF_FENCE,			/* refuse every write: this primary is cut off */
	HA_ACT_LIFT_SELF_FENCE,		/* the witness confirms this node's term */
	HA_ACT_PROMOTE_GRANTED,		/* promote with the term the witness granted */
	HA_ACT_FOLLOW,				/* this standby's primary moved to a newer term */
	HA_ACT_REJOIN,				/* follow the new primary, merging first */
	HA_ACT_ENABLE_SUBSCRIPTION, /* an error stopped it; its primary is back */
	HA_ACT_REFUSE_COPYING,		/* no failover: the initial copy is unfinished */
	HA_ACT_REFUSE_FENCE_ORDER,	/* no failover: the settings' order is wrong */
	HA_ACT_REQUEST_TERM,		/* ask the witness for a new term */
	HA_ACT_PROMOTE				/* promote with the next term (no witness) */
} HaAction;

/* One row of the table: in `role`, when `when` holds, do `action`. */
typedef struct HaRule
{
	HaRole		role;
	bool		(*when) (const HaFacts *f);
	HaAction	action;
	const char *why;
} HaRule;

/* The rows, first match wins; ha_rule_count of them. */
extern const HaRule ha_rules[];
extern const int ha_rule_count;

/*
 * The action for these facts: the first row whose role and condition match,
 * or HA_ACT_NONE.  *rule gets the row's index (-1 for none) when not NULL.
 * Pure: reads nothing but `f`, changes nothing.
 */
extern HaAction ha_decide(const HaFacts *f, int *rule);

/*
 * Whether the facts say the primary is lost and this standby may replace it:
 * then, and only then, the worker must find out whether its initial copy is
 * done (a query) before it decides.
 */
extern bool ha_primary_lost(const HaFacts *f);

/* The action's name in logs and tests ("step_down_for_peer"...). */
extern const char *ha_action_name(HaAction action);

#endif							/* HA_DECIDE_H */
