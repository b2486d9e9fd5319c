/*
 * ha_guc.c
 *		The crawler_ha.* settings of the HA worker, and the entry point that
 *		_PG_init calls to install them, the shared memory and the worker.
 *
 * Every setting is reloadable (SIGHUP) except the database the worker
 * connects to.  The conninfo settings are superuser-only and may not carry a
 * password: a reloaded value is written to the server log, so passwords
 * belong in a password file.
 */
#include "postgres.h"

#include <limits.h>

#include "libpq-fe.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "ha_shared.h"
#include "ha_guc.h"

char	   *ha_peer_conninfo = NULL;
char	   *ha_witness_conninfo = NULL;
char	   *ha_database = NULL;
char	   *ha_agent_url = NULL;
int			ha_health_check_interval_ms = 5000;
int			ha_failure_threshold = 3;
int			ha_response_timeout_ms = 30000;
int			ha_merge_chunk_rows = 10000;
bool		ha_auto_failover = true;
int			ha_replication_mode = HA_MODE_ASYNC;
int			ha_sync_timeout_ms = 10000;
int			ha_replication_lag_threshold_ms = 60000;
int			ha_fence_timeout_ms = 10000;
int			ha_priority = 100;

bool		ha_preloaded = false;

static const struct config_enum_entry replication_mode_options[] = {
	{"async", HA_MODE_ASYNC, false},
	{"sync", HA_MODE_SYNC, false},
	{"semi_sync", HA_MODE_SEMI_SYNC, false},
	{NULL, 0, false}
};

/* A crawler_ha.replication_mode value's name, as the setting spells it. */
const char *
ha_replication_mode_name(int mode)
{
	switch (mode)
	{
		case HA_MODE_SYNC:
			return "sync";
		case HA_MODE_SEMI_SYNC:
			return "semi_sync";
		default:
			return "async";
	}
}

/*
 * A conninfo must parse and must not contain a password.  The messages never
 * quote the value, so a rejected string does not reach the log either.
 */
static bool
check_conninfo(char **newval, void **extra, GucSource source)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *err = NULL;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	opts = PQconninfoParse(*newval, &err);
	if (opts == NULL)
	{
		if (err)
			PQfreemem(err);
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crawler_ha connection string is not valid");
		GUC_check_errhint("Use keyword=value pairs or a postgresql:// URI.");
		return false;
	}
	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (strcmp(opt->keyword, "password") == 0 && opt->val != NULL && opt->val[0] != '\0')
		{
			PQconninfoFree(opts);
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("crawler_ha connection strings must not contain a password");
			GUC_check_errdetail("Changed settings are written to the server log.");
			GUC_check_errhint("Put the password in a password file (the passfile keyword or PGPASSFILE) or use certificate or peer authentication.");
			return false;
		}
	}
	PQconninfoFree(opts);
	return true;
}

/*
 * crawler_ha.agent_url: empty, or an http:// or https:// URL of at most
 * HA_AGENT_URL_LEN bytes, printable ASCII only.  Workers are handed it
 * (crawl_blob_target()) and the peer reads it (ha_ping()), so it must be a
 * URL they can put on a request line as it is; no user:password@ either,
 * since a reloaded value is written to the server log.  The messages never
 * quote the value.
 */
static bool
check_agent_url(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	const char *host;
	size_t		len;

	if (v == NULL || v[0] == '\0')
		return true;
	len = strlen(v);
	if (len > HA_AGENT_URL_LEN)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crawler_ha.agent_url is longer than %d bytes", HA_AGENT_URL_LEN);
		return false;
	}
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) v[i];

		if (c <= 0x20 || c >= 0x7f)
		{
			GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
			GUC_check_errmsg("crawler_ha.agent_url contains a space, a control character or a non-ASCII byte");
			GUC_check_errhint("Percent-encode the path; use an IP address or an ASCII (punycode) host name.");
			return false;
		}
	}
	if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		host = v + 8;
	else
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crawler_ha.agent_url must start with http:// or https://");
		GUC_check_errhint("For example https://10.0.0.5:8000, the address workers and the peer's agent reach this node's agent at.");
		return false;
	}
	if (host[0] == '\0' || host[0] == '/' || host[0] == ':' || host[0] == '?' || host[0] == '#')
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crawler_ha.agent_url has no host");
		return false;
	}
	if (strcspn(host, "@") < strcspn(host, "/?#"))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("crawler_ha.agent_url must not contain user information (user:password@)");
		GUC_check_errdetail("Changed settings are written to the server log.");
		return false;
	}
	return true;
}

/* Long on purpose: one Define call per setting, the whole table in one place. */
static void
define_settings(void)
{
	DefineCustomStringVariable("crawler_ha.peer_conninfo",
							   "Connection string of the other data node.",
							   "Used for health checks, the subscription and switchover; no password (use a password file).",
							   &ha_peer_conninfo, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_conninfo, NULL, NULL);

	DefineCustomStringVariable("crawler_ha.witness_conninfo",
							   "Connection string of the witness node (optional).",
							   "Empty means no witness; no password (use a password file).",
							   &ha_witness_conninfo, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   check_conninfo, NULL, NULL);

	/*
	 * Reloadable, so set in postgresql.conf or by ALTER SYSTEM: a superuser's,
	 * or a role's granted ALTER SYSTEM ON PARAMETER (SET cannot change a
	 * reload-only setting).  Readable by anyone: it is the address workers
	 * are handed anyway.
	 */
	DefineCustomStringVariable("crawler_ha.agent_url",
							   "URL of this node's crawler-ha agent (its blob store), e.g. https://10.0.0.5:8000.",
							   "Empty means no agent. Workers upload blobs there (crawl_blob_target()); the peer reads it through ha_ping().",
							   &ha_agent_url, "",
							   PGC_SIGHUP, 0,
							   check_agent_url, NULL, NULL);

	/* a PGC_POSTMASTER setting can only be created while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("crawler_ha.database",
								   "Database in which the HA worker runs; the extension must be created there.",
								   NULL,
								   &ha_database, "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.health_check_interval",
							"Time between two health checks of the peer.",
							NULL,
							&ha_health_check_interval_ms, 5000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.failure_threshold",
							"Consecutive failed health checks after which the peer is unhealthy.",
							"A standby promotes itself once its primary reaches this count.",
							&ha_failure_threshold, 3, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.response_timeout",
							"A health check that takes longer than this fails.",
							NULL,
							&ha_response_timeout_ms, 30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.merge_chunk_rows",
							"Rows a rejoining node sends to the new primary in one merge call (one transaction there).",
							"Larger chunks mean fewer round trips and longer transactions; 10,000 images are about 5 MB of JSON.",
							&ha_merge_chunk_rows, 10000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("crawler_ha.auto_failover",
							 "Whether the standby promotes itself and an old primary rejoins automatically.",
							 NULL,
							 &ha_auto_failover, true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("crawler_ha.replication_mode",
							 "async, sync (no acknowledged write lost) or semi_sync (sync that degrades after sync_timeout).",
							 NULL,
							 &ha_replication_mode, HA_MODE_ASYNC, replication_mode_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.sync_timeout",
							"In semi_sync mode, how long the primary waits without its standby before writing asynchronously.",
							NULL,
							&ha_sync_timeout_ms, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.replication_lag_threshold",
							"Replication lag above which an alert event is recorded.",
							NULL,
							&ha_replication_lag_threshold_ms, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.fence_timeout",
							"With a witness, an isolated primary turns read-only after this long.",
							"Must stay below health_check_interval x failure_threshold, the standby's promotion delay.",
							&ha_fence_timeout_ms, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("crawler_ha.priority",
							"Promotion priority of this node; lower promotes first, 0 never promotes.",
							NULL,
							&ha_priority, 100, 0, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

/*
 * Called from _PG_init.  The settings exist in every process; the shared
 * memory and the worker only when the library is preloaded.
 */
void
ha_worker_init(void)
{
	define_settings();

	if (!process_shared_preload_libraries_in_progress)
		return;

	ha_preloaded = true;
	ha_shmem_install_hooks();
	ha_register_worker();
}
