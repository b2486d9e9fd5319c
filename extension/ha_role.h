/*
 * ha_role.h
 *		A node's part in the cluster.  Plain C with no server headers, so the
 *		decision table (ha_decide.c) that uses it builds into a test program
 *		as well as into the extension.
 */
#ifndef HA_ROLE_H
#define HA_ROLE_H

/* A node's part in the cluster, as its ha_state row names it. */
typedef enum HaRole
{
	HA_ROLE_NONE,				/* not known: state not loaded, or never heard of */
	HA_ROLE_PRIMARY,
	HA_ROLE_STANDBY,
	HA_ROLE_WITNESS
} HaRole;

#endif							/* HA_ROLE_H */
