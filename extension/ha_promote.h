/*
 * ha_promote.h
 *		Promotion (ha_promote.c): a standby becomes the primary of a new term.
 */
#ifndef HA_PROMOTE_H
#define HA_PROMOTE_H

#include "ha_shared.h"

/*
 * Whether this standby's subscription has finished its initial copy.  One
 * that has not (a rejoin's copy afresh, or a new standby's) lacks the rows
 * the primary had before it subscribed, and no tail would bring them back:
 * promoted, the old primary's rejoin would empty itself and copy this
 * node.  So only a forced failover promotes it.  On false, msg says why.
 */
extern bool ha_initial_copy_done(char *msg, size_t msglen);

/*
 * Makes this standby the primary of a new term: `granted_term` when the
 * witness granted one (> 0), else one past the newest term heard of.  Order
 * matters: the old subscription is detached (never re-enabled: it would pull
 * the old primary's split-brain writes), the reverse slot exists before the
 * first write, and only then is the new term committed.  `force` promotes a
 * standby whose initial copy is unfinished.  True when this node is the
 * primary afterwards (already was, too); msg says what happened or why not.
 * The state is reloaded from ha_state afterwards, and a promotion event
 * recorded.
 */
extern bool ha_promote(const char *reason, bool switchover, bool force, int64 granted_term,
					   char *msg, size_t msglen);

#endif							/* HA_PROMOTE_H */
