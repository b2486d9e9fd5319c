/*
 * ha_replication.h
 *		The primary's watch of replication, maintenance mode, the subscription
 *		switch and blocked merges (ha_replication.c).
 */
#ifndef HA_REPLICATION_H
#define HA_REPLICATION_H

#include "ha_shared.h"

/*
 * On the primary: reads replication lag and the synchronous standby's
 * state into shared memory, and degrades or restores sync mode.
 */
extern void ha_monitor_replication(void);

/*
 * Maintenance mode on or off (ha_state.paused), giving up after
 * HA_DEMOTE_GRACE_MS behind a transaction holding ha_state.  On false,
 * msg says why.
 */
extern bool ha_set_paused(bool paused, char *msg, size_t msglen);

/*
 * ALTER SUBSCRIPTION ... ENABLE in a transaction of its own (after
 * disable_on_error stopped it); a failure is logged, not raised.
 */
extern void ha_enable_subscription(void);

/*
 * Inside a step's transaction: drops this node's subscription when it
 * exists, leaving its slot on the node it subscribed to (the slot is
 * detached first, or DROP would drop it there: a promotion keeps it as the
 * old primary's tail, a rejoin reuses the one made for it).
 */
extern void ha_drop_subscription_in_txn(void);

/*
 * Inside a step's transaction: subscribes this node to the peer
 * (crawler_ha.peer_conninfo) over the existing slot `slot`, copying the
 * tables first when `copy_data`.  An apply error disables the subscription
 * (the worker enables it again while the same primary is back); the apply
 * worker commits locally, never waiting for a synchronous standby.
 */
extern void ha_create_subscription_in_txn(const char *slot, bool copy_data);

/*
 * Point the subscription at a new connection string (the peer moved, or
 * its TLS or user settings changed).  The apply worker reconnects with it.
 */
extern void ha_subscription_set_conninfo(const char *conninfo);

/*
 * Cancel the commits waiting for an absent synchronous standby that hold
 * up a merge (66_merge_receive.sql); an event when any were cancelled.
 */
extern void ha_release_blocked_merges(void);

#endif							/* HA_REPLICATION_H */
