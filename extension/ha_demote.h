/*
 * ha_demote.h
 *		Demotion (ha_demote.c): a newer term exists elsewhere.
 */
#ifndef HA_DEMOTE_H
#define HA_DEMOTE_H

#include "ha_shared.h"
#include "ha_timing.h"


/*
 * Lock ha_state for the UPDATE that demotes or fences this node, inside the
 * caller's transaction: the table in EXCLUSIVE mode (which waits for the
 * writes that passed the fence), then the row.  The wait is queued like any
 * lock's but lasts at most HA_DEMOTE_GRACE_MS; then the client sessions
 * still holding the table are ended and the lock taken.  If even that fails, the error goes to the
 * caller, whose next check tries again.  Returns how many sessions ended.
 */
extern int ha_lock_state_row_in_txn(void);

/*
 * Steps this primary down: a newer term `new_term` exists, whose primary is
 * `primary_name` (node `primary_id`).  Fences (read-only), records the
 * demotion with `reason`, ends client sessions; `needs_rejoin` leaves it to
 * rejoin later.  False when a step failed (logged); the next check retries.
 */
extern bool ha_demote(int64 new_term, const char *primary_name, int32 primary_id, bool needs_rejoin, const char *reason);

#endif							/* HA_DEMOTE_H */
