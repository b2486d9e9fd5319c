/*
 * ha_settings.c
 *		The server settings HA changes: ALTER SYSTEM without SQL, reload,
 *		default_transaction_read_only (the fence) and synchronous_standby_names.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include <signal.h>

#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "ha_shared.h"
#include "ha_settings.h"
#include "ha_step.h"

/* ---- settings: ALTER SYSTEM without SQL ---- */

/*
 * ALTER SYSTEM SET name = value, or RESET when value is NULL, in
 * postgresql.auto.conf; the running server sees it at its next reload
 * (ha_reload_config()).  Not transactional: a caller does it last, once
 * nothing else can fail.  Needs a transaction (privilege check, lookups).
 */
void
ha_set_system_setting(const char *name, const char *value)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);

	set->name = pstrdup(name);
	if (value == NULL)
	{
		set->kind = VAR_RESET;
		set->args = NIL;
	}
	else
	{
		A_Const    *c = makeNode(A_Const);

		c->val.sval.type = T_String;
		c->val.sval.sval = pstrdup(value);
		c->location = -1;
		set->kind = VAR_SET_VALUE;
		set->args = list_make1(c);
	}
	stmt->setstmt = set;
	AlterSystemSetConfigFile(stmt);
}

void
ha_reload_config(void)
{
	if (kill(PostmasterPid, SIGHUP) != 0)
		ereport(WARNING,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("crawler_ha: could not signal the postmaster to reload: %m")));
}

/*
 * Both need a transaction around them (privilege check, catalog lookups).
 * The worker's own session overrides default_transaction_read_only, so its
 * view of the setting says nothing about the file: always write it.
 */
bool
ha_set_read_only_in_txn(bool on)
{
	ha_set_system_setting("default_transaction_read_only", on ? "on" : NULL);
	/* the fence holds from here, not from whenever the reload is seen */
	if (on)
	{
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->server_read_only = true;
		SpinLockRelease(&ha_shared->mutex);
	}
	return true;
}

static void
read_server_read_only_step(void *arg)
{
	bool	   *on = (bool *) arg;
	char	   *v = ha_spi_sql("SELECT setting FROM pg_catalog.pg_file_settings "
							"WHERE name = 'default_transaction_read_only' AND error IS NULL "
							"ORDER BY seqno DESC LIMIT 1");

	if (v != NULL)
		(void) parse_bool(v, on);
}

/*
 * The server's default_transaction_read_only, as its configuration files
 * set it, into shared memory for the write fence.  Every session's own
 * value can be set by its client (PGOPTIONS, SET) and the worker's own is
 * forced off, so neither says what the server was told: the files do.
 * Called by the worker at its start and after every reload.  A failed read
 * is logged and leaves shared memory as it was.
 */
void
ha_refresh_server_read_only(void)
{
	bool		on = false;

	if (!ha_step_run("reading the server's read-only setting", read_server_read_only_step, &on, NULL, 0))
		return;
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->server_read_only = on;
	SpinLockRelease(&ha_shared->mutex);
}

/* what ha_set_read_only() hands its step, and what it gets back */
typedef struct ReadOnlyArgs
{
	bool		on;
	bool		changed;
} ReadOnlyArgs;

static void
set_read_only_step(void *arg)
{
	ReadOnlyArgs *a = (ReadOnlyArgs *) arg;

	a->changed = ha_set_read_only_in_txn(a->on);
}

/*
 * The fence: default_transaction_read_only on or reset, by ALTER SYSTEM in a
 * transaction of its own, then a reload.  Failures are logged, not raised.
 */
void
ha_set_read_only(bool on)
{
	ReadOnlyArgs a = {on, false};

	if (!ha_step_run("changing default_transaction_read_only", set_read_only_step, &a, NULL, 0))
		return;
	ha_refresh_server_read_only();
	if (a.changed)
	{
		ha_reload_config();
		ereport(LOG,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("crawler_ha: default_transaction_read_only turned %s", on ? "on" : "off")));
	}
}

static void
set_sync_standby_step(void *arg)
{
	bool		on = *(bool *) arg;

	ha_set_system_setting("synchronous_standby_names", on ? HA_SUBSCRIPTION : NULL);
}

/*
 * synchronous_standby_names is ours only while it is empty or names our
 * subscription; an operator's own value is never touched.  Sets it to our
 * subscription (on) or resets it, in a transaction of its own, then reloads;
 * a failure is logged, not raised.
 */
void
ha_set_sync_standby(bool on)
{
	const char *cur = GetConfigOptionResetString("synchronous_standby_names");
	bool		is_ours = (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0);
	bool		is_empty = (cur == NULL || cur[0] == '\0');

	if ((on && is_ours) || (!on && is_empty))
		return;
	if (!is_ours && !is_empty)
		return;

	if (!ha_step_run("changing synchronous_standby_names", set_sync_standby_step, &on, NULL, 0))
		return;
	ha_reload_config();
	ereport(LOG,
			(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
			 errmsg("crawler_ha: synchronous replication %s", on ? "on" : "off")));
}
