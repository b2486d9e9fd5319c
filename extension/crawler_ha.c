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
#include "ha_shared.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			crawler_ha_node_id = 1;
char	   *crawler_ha_node_name = NULL;

PG_FUNCTION_INFO_V1(crawler_ha_library_version);

void
_PG_init(void)
{
	/*
	 * The node id partitions every id this node hands out (id % 1024 ==
	 * node_id), so two nodes must never share one.  It is read when the
	 * extension is created and by ha_set_node_id(); changing it later does not
	 * renumber anything.
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

/* Name used in messages: the configured one, else "node<id>". */
const char *
crawler_ha_display_name(void)
{
	static char buf[32];

	if (crawler_ha_node_name != NULL && crawler_ha_node_name[0] != '\0')
		return crawler_ha_node_name;
	snprintf(buf, sizeof(buf), "node%d", crawler_ha_node_id);
	return buf;
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
