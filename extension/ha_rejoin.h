/*
 * ha_rejoin.h
 *		Rejoin (ha_rejoin.c): an old primary follows the new one.
 */
#ifndef HA_REJOIN_H
#define HA_REJOIN_H

#include "ha_shared.h"

/*
 * Makes this old primary a standby of the current one: its unreplicated
 * tail is merged into the new primary (or the node recopied), then it
 * subscribes.  On false, msg says why (the caller retries with backoff).
 */
extern bool ha_rejoin(char *msg, size_t msglen);

#endif							/* HA_REJOIN_H */
