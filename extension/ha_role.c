/*
 * ha_role.c
 *		A node's role between its spelling in ha_state (and on the wire,
 *		from ha_ping()) and the HaRole the C code compares.
 */
#include "postgres.h"


#include "ha_shared.h"

HaRole
ha_role_from_name(const char *name)
{
	if (name == NULL)
		return HA_ROLE_NONE;
	if (strcmp(name, "primary") == 0)
		return HA_ROLE_PRIMARY;
	if (strcmp(name, "standby") == 0)
		return HA_ROLE_STANDBY;
	if (strcmp(name, "witness") == 0)
		return HA_ROLE_WITNESS;
	return HA_ROLE_NONE;
}

const char *
ha_role_name(HaRole role)
{
	switch (role)
	{
		case HA_ROLE_PRIMARY:
			return "primary";
		case HA_ROLE_STANDBY:
			return "standby";
		case HA_ROLE_WITNESS:
			return "witness";
		case HA_ROLE_NONE:
			break;
	}
	return "";
}
