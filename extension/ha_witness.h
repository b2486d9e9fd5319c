/*
 * ha_witness.h
 *		A data node's side of the witness (ha_witness.c): the report, the term
 *		request, self-fencing, and the order the settings must keep.
 */
#ifndef HA_WITNESS_H
#define HA_WITNESS_H

#include "ha_shared.h"
#include "ha_conn.h"

/* What one turn of ha_witness_tick() brought, for the decision table. */
typedef struct HaWitnessNews
{
	bool		answered;		/* the witness answered a report just now */
	int64		granted_term;	/* > 0: it granted this node that term just now */
	bool		isolated;		/* this primary's fence deadline has passed */
} HaWitnessNews;

/* Whether crawler_ha.witness_conninfo is set. */
extern bool ha_witness_configured(void);
/* True without a witness, or when fence_timeout is below the promotion delay. */
extern bool ha_witness_order_ok(void);
/*
 * With a witness, an isolated primary must turn read-only before its standby
 * can promote: fence_timeout below health_check_interval x failure_threshold.
 * NULL when the settings keep that order, else what is wrong (palloc'd).
 */
extern const char *ha_fence_order_problem(void);
/* At start and on reload: publishes the witness's configuration and the order's problem, alerting once. */
extern void ha_witness_check_settings(void);
/*
 * On every turn of the worker's loop: steps the report and the term request,
 * starts the next report when due; fills `news` with what arrived.  Decides
 * nothing: the decision table acts on the news.
 */
extern void ha_witness_tick(HaWitnessNews *news);
/* Starts a term request unless one is in flight (its answer comes through the tick). */
extern void ha_witness_request_grant(void);
/* Whether a term request is in flight. */
extern bool ha_witness_grant_pending(void);
/* The witness connections in flight, into out[] (room for two); their count. */
extern int	ha_witness_conns(HaConn **out);
/* When the witness next needs the worker awake (report due, fence deadline); 0: never. */
extern TimestampTz ha_witness_next_wakeup(void);
/* Closes both witness connections. */
extern void ha_witness_close(void);
/* A check of the peer ended; a success is contact, which keeps a primary unfenced. */
extern void ha_witness_peer_contact(bool ok);
/* Whether this primary with a witness has passed its fence deadline. */
extern bool ha_witness_isolated(void);
/*
 * Fences this isolated primary: shared memory refuses writes at once, client
 * sessions end, then the fence is persisted (retried shortly if that fails).
 */
extern void ha_witness_self_fence(void);
/* Lifts a fence for isolation (the witness confirmed this node's term); `why` goes to the event. */
extern void ha_witness_lift_self_fence(const char *why);
/* Whether this node is fenced for isolation in its current term (may read ha_state). */
extern bool ha_witness_fenced_by_isolation(void);
/* Why a write must be refused because of the witness or a self-fence, or NULL. */
extern const char *ha_write_block_reason(const HaShared *snap);

#endif							/* HA_WITNESS_H */
