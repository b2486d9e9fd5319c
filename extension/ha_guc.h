/*
 * ha_guc.h
 *		The crawler_ha.* HA settings (ha_guc.c).
 */
#ifndef HA_GUC_H
#define HA_GUC_H

/* crawler_ha.replication_mode */
typedef enum HaReplicationMode
{
	HA_MODE_ASYNC,
	HA_MODE_SYNC,
	HA_MODE_SEMI_SYNC
} HaReplicationMode;

/* The settings' current values (each documented where it is defined). */
extern char *ha_peer_conninfo;
extern char *ha_witness_conninfo;
extern char *ha_database;
extern char *ha_agent_url;
extern int	ha_health_check_interval_ms;
extern int	ha_failure_threshold;
extern int	ha_response_timeout_ms;
/* rows per ha_merge_receive() call when a node merges its tail on rejoin */
extern int	ha_merge_chunk_rows;
extern bool ha_auto_failover;
extern int	ha_replication_mode;
extern int	ha_sync_timeout_ms;
extern int	ha_replication_lag_threshold_ms;
extern int	ha_fence_timeout_ms;
extern int	ha_priority;

/* A replication_mode value's name, as the setting spells it. */
extern const char *ha_replication_mode_name(int mode);

/*
 * Called from _PG_init.  The settings exist in every process; the shared
 * memory and the worker only when the library is preloaded.
 */
extern void ha_worker_init(void);

#endif							/* HA_GUC_H */
