/*
 * ha_state.h
 *		This node's HA state (ha_state.c): read from ha_node and ha_state into
 *		HaLocal, published to shared memory.
 */
#ifndef HA_STATE_H
#define HA_STATE_H

#include "ha_shared.h"

/* The name of the logical replication slot that feeds node `node_id` (palloc'd). */
extern char *ha_slot_name(int32 node_id);

/* The extension's schema, quoted, as the worker last read it ("" before). */
extern const char *ha_ext_schema(void);

/*
 * Copies HaLocal into shared memory, where SQL functions read it, and
 * raises max_term_seen to this node's term.
 */
extern void ha_publish_local_state(void);

/* Records that `term` exists somewhere: writes of older terms are refused. */
extern void ha_raise_max_term(int64 term);

/*
 * Reads ha_node and ha_state in a transaction of its own into HaLocal and
 * publishes them.  False when the extension is not installed in the
 * worker's database (or the read failed, which is logged).
 */
extern bool ha_load_local_state(void);

/*
 * After a transition committed: ha_load_local_state(), so that HaLocal is
 * what the transaction left in ha_state rather than a copy patched beside
 * it.  When that read fails (logged), the role counts as unknown
 * (HA_ROLE_NONE, published) until a read succeeds, so nothing in the rest
 * of the worker's round acts on a role the node may no longer have.  The
 * write fence does not depend on it: a transition raises max_term_seen
 * (ha_raise_max_term()) or commits its fence before it calls this.
 */
extern void ha_refresh_local_state(void);

#endif							/* HA_STATE_H */
