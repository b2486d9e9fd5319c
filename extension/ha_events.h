/*
 * ha_events.h
 *		HA events and client sessions (ha_events.c).
 */
#ifndef HA_EVENTS_H
#define HA_EVENTS_H

#include "ha_shared.h"

/*
 * Inserts an ha_events row in the caller's transaction (NOTIFY follows
 * with its id); `detail` is JSON text or NULL.
 */
extern void ha_record_event_in_txn(const char *kind, const char *reason, double duration_ms, const char *detail_json);

/* duration_ms < 0 means none. */
extern void ha_record_event(const char *kind, const char *reason, double duration_ms, const char *detail_json);

/*
 * Ends every client session of this server but the worker's own and
 * `except_pid`; returns how many.
 */
extern int ha_terminate_clients(int except_pid);

#endif							/* HA_EVENTS_H */
