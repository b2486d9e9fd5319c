/*
 * ha_announce.h
 *		New crawl sessions announced to the listening crawler workers
 *		(ha_announce.c).
 */
#ifndef HA_ANNOUNCE_H
#define HA_ANNOUNCE_H

/* The channel crawler-worker run LISTENs on. */
#define HA_WORK_CHANNEL "crawler_ha_work"

/*
 * In the HA worker's loop: when a transaction that called
 * crawl_announce_work() has committed since the last call, notifies
 * HA_WORK_CHANNEL in a transaction of its own (committed locally, at most
 * 100 ms of waiting for the notification lock; a failure is logged and the
 * workers find the session at their next poll).
 */
extern void ha_announce_work_if_asked(void);

#endif
