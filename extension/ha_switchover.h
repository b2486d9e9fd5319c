/*
 * ha_switchover.h
 *		A planned switchover, run on the primary (ha_switchover.c).
 */
#ifndef HA_SWITCHOVER_H
#define HA_SWITCHOVER_H

#include "ha_shared.h"

/*
 * A planned switchover from this primary to its standby, judged on the
 * check just made: refused unless the standby is healthy, caught up and
 * (when `target_name` is given) so named, unless `force` for lag.  Fences,
 * waits for the standby to confirm the last LSN, hands over the term, ends
 * client sessions but `except_pid`.  On false msg says why; nothing changed
 * unless the failure came after the standby's promotion (msg names the step).
 */
extern bool ha_switchover(const char *target_name, bool force, int except_pid, char *msg, size_t msglen);

#endif							/* HA_SWITCHOVER_H */
