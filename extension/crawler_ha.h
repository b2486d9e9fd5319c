/*
 * crawler_ha.h
 *		Declarations shared by the crawler_ha module's files.
 */
#ifndef CRAWLER_HA_H
#define CRAWLER_HA_H

/* ids are generated as k * CRAWLER_HA_MAX_NODES + node_id */
#define CRAWLER_HA_MAX_NODES 1024

#endif							/* CRAWLER_HA_H */
