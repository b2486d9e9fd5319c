/*
 * ha_act.h
 *		The HA worker's decisions carried out (ha_act.c): the facts gathered,
 *		the decision table asked (ha_decide.h), its action performed.
 */
#ifndef HA_ACT_H
#define HA_ACT_H

#include "ha_shared.h"
#include "ha_witness.h"

/*
 * After a health check of the peer ended (`ok`: it answered; `started`: when
 * the check began): the outage's events (detection, recovery), then the
 * decisions this node makes on what it now knows.
 */
extern void ha_act_on_peer_check(bool ok, TimestampTz started);

/*
 * After a turn of the witness's connections: when it brought anything (an
 * answer, a granted term, the fence deadline passed), the decisions on it.
 */
extern void ha_act_on_witness(const HaWitnessNews *news);

/*
 * After every rejoin attempt, automatic or asked for (`manual`).  A refusal
 * is published for ha_status(), recorded as a rejoin_refused event when its
 * reason is new (or it was asked for), and the automatic rejoin is due again
 * after a back-off; a success clears all that.
 */
extern void ha_rejoin_attempted(bool ok, bool manual, const char *msg);

#endif							/* HA_ACT_H */
