/*
 * ha_settings.h
 *		Server settings HA changes (ha_settings.c): ALTER SYSTEM, reload, the
 *		read-only fence, synchronous_standby_names.
 */
#ifndef HA_SETTINGS_H
#define HA_SETTINGS_H

#include "ha_shared.h"

/*
 * ALTER SYSTEM SET name = value, or RESET when value is NULL, in
 * postgresql.auto.conf; the running server sees it at its next reload
 * (ha_reload_config()).  Not transactional: a caller does it last, once
 * nothing else can fail.  Needs a transaction (privilege check, lookups).
 */
extern void ha_set_system_setting(const char *name, const char *value);

/* Signals the postmaster to reload the configuration (a failure is a warning). */
extern void ha_reload_config(void);

/*
 * Both need a transaction around them (privilege check, catalog lookups).
 * The worker's own session overrides default_transaction_read_only, so its
 * view of the setting says nothing about the file: always write it.
 */
extern bool ha_set_read_only_in_txn(bool on);

/*
 * The server's default_transaction_read_only, as its configuration files
 * set it, into shared memory for the write fence.  Every session's own
 * value can be set by its client (PGOPTIONS, SET) and the worker's own is
 * forced off, so neither says what the server was told: the files do.
 * Called by the worker at its start and after every reload.
 */
extern void ha_refresh_server_read_only(void);

/*
 * The fence: default_transaction_read_only on or reset, by ALTER SYSTEM in a
 * transaction of its own, then a reload.  Failures are logged, not raised.
 */
extern void ha_set_read_only(bool on);

/*
 * synchronous_standby_names is ours only while it is empty or names our
 * subscription; an operator's own value is never touched.
 */
extern void ha_set_sync_standby(bool on);

#endif							/* HA_SETTINGS_H */
