/*
 * crawler_ha.h
 *		Declarations shared by the crawler_ha module's files.
 */
#ifndef CRAWLER_HA_H
#define CRAWLER_HA_H

/* ids are generated as k * CRAWLER_HA_MAX_NODES + node_id */
#define CRAWLER_HA_MAX_NODES 1024

extern int	crawler_ha_node_id;
extern char *crawler_ha_node_name;

extern const char *crawler_ha_display_name(void);

#endif							/* CRAWLER_HA_H */
