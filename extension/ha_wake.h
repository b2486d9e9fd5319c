/*
 * ha_wake.h
 *		What a committing transaction asks of the HA worker (ha_wake.c).
 */
#ifndef HA_WAKE_H
#define HA_WAKE_H

/* What the HA worker is woken for; bits, several may be asked at once. */
typedef enum HaWakeFor
{
	HA_WAKE_RELOAD = 1 << 0,	/* re-read ha_state and check the peer now */
	HA_WAKE_ANNOUNCE = 1 << 1	/* notify the crawler workers of new work */
} HaWakeFor;

/*
 * When the current transaction commits, the HA worker is woken for `what`
 * (HaWakeFor bits; nothing happens on abort).  A no-op without the worker.
 */
extern void ha_wake_at_commit(int what);

#endif
