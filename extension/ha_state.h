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

#endif							/* HA_STATE_H */
