/*
 * ha_sql.h
 *		What the SQL-callable HA functions of several files share.
 */
#ifndef HA_SQL_H
#define HA_SQL_H

#include "fmgr.h"

/* The schema the calling function lives in, quoted: the peer uses the same one. */
extern char *ha_own_schema(FunctionCallInfo fcinfo);

/*
 * This node's number and name as its ha_node row holds them, read in the
 * caller's transaction.  The row is the one source of the node's identity:
 * ha_set_node_id() changes it, the peer reads it through ha_ping(), and the
 * settings crawler_ha.node_id and crawler_ha.node_name only give it its
 * first values at CREATE EXTENSION.  `name` has room for HA_NAME_LEN bytes;
 * `id` may be NULL.
 */
extern void ha_node_identity(FunctionCallInfo fcinfo, int32 *id, char *name);

#endif
