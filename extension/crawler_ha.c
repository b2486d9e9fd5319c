/*
 * crawler_ha.c
 *		Module entry point: settings that identify this node, and the
 *		library version the SQL side checks against.
 *
 * The HA background worker, its settings and shared memory live in the
 * ha_*.c files; _PG_init hands over to them.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "crawler_ha.h"
#include "ha_guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * The settings only seed the ha_node row at CREATE EXTENSION (sql/20_node.sql
 * reads them there); from then on the row is the node's identity.
 */
static int	crawler_ha_node_id = 1;
static char *crawler_ha_node_name = NULL;

PG_FUNCTION_INFO_V1(crawler_ha_library_version);

void
_PG_init(void)
{
	/*
	 * The node id partitions every id this node hands out (id % 1024 ==
	 * node_id), so two nodes must never share one.  It is read when the
	 * extension is created; changing it later renumbers nothing (that is
	 * ha_set_node_id(), which changes the ha_node row).
	 */
	DefineCustomIntVariable("crawler_ha.node_id",
							"Number of this node (1-1023), unique within the cluster.",
							"Every id generated on this node is congruent to it modulo 1024.",
							&crawler_ha_node_id,
							1, 1, CRAWLER_HA_MAX_NODES - 1,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("crawler_ha.node_name",
							   "Name of this node as shown in ha_status() and error messages.",
							   "Empty means \"node<node_id>\".",
							   &crawler_ha_node_name,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	/* HA settings always; shared memory and the worker only when preloaded */
	ha_worker_init();

	MarkGUCPrefixReserved("crawler_ha");
}

/*
 * The version this library was built as; the install script compares it with
 * its own so a stale library is caught at CREATE EXTENSION, not at failover.
 */
Datum
crawler_ha_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(CRAWLER_HA_VERSION));
}
