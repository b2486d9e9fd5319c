# The agents schedule backups: both agents are given the node's pgBackRest
# configuration and tiny intervals (an incremental every 5 s, no
# differential, a full one an hour); the primary's agent makes a full backup
# of its stanza, then incrementals; the standby's agent makes none (it is
# refused before it starts anything); after a switchover the new primary's
# agent backs up its own stanza, a full one first, then incrementals, and
# the old primary's agent stops. Then the same schedule without the agents:
# `crawler-ha backup schedule` (what crawler-ha-backup.service runs) goes on
# and stops on SIGTERM; its unit is hardened and systemd-analyze accepts it.
use strict;
use warnings;
use FindBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(ha_pair ha_wait_writable);
use CrawlerHA::Agent qw(agent_start agent_kill agent_wait_log);
use CrawlerHA::Backup qw(backup_setup_pair);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
my ($pgbackrest) = grep { -x "$_/pgbackrest" } split /:/, $ENV{PATH};
plan skip_all => 'pgbackrest is not installed (scripts/install-deps installs it)' unless $pgbackrest;

my @agents;
END { eval { agent_kill($_) } for @agents; }

my ($a, $b) = ha_pair(names => [ 'bs_a', 'bs_b' ]);
my $bk = backup_setup_pair($a, $b);

for my $n ($a, $b)
{
	push @agents,
	  agent_start($n,
		args => [ '--backup-config', $bk->{conf}{ $n->name }, '--backup-full-interval-s', 3600,
			'--backup-diff-interval-s', 0, '--backup-incr-interval-s', 5,
			'--backup-scratch-dir', $bk->{dir} ]);
}
my ($aa, $ab) = @agents;

# "full incr incr ..." of a stanza, oldest first, as recorded on $node.
sub made
{
	my ($node, $stanza) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(type, ' ' ORDER BY stopped_at, id), '') FROM ha_backups() "
		  . "WHERE stanza = '$stanza' AND verify_ok");
}

# Waits until the backups of $stanza recorded on $node match $re.
sub wait_made
{
	my ($node, $stanza, $re, $max) = @_;
	my $t0 = time;
	while (time - $t0 < ($max // 60))
	{
		return 1 if made($node, $stanza) =~ $re;
		sleep 1;
	}
	return 0;
}

# --- the primary's agent: a full backup, then incrementals ---
ok(wait_made($a, 'bs_a', qr/^full incr incr/), 'the primary\'s agent made a full backup, then incrementals')
  or diag(made($a, 'bs_a'));
ok(agent_wait_log($aa, qr/backups: incr backup done: backup: incr \S+I/, 5), 'and logged each one with its label');
is($b->safe_psql('postgres', 'SELECT count(*) FROM ha_backups()'), '0', 'the standby\'s agent made none');
ok(agent_wait_log($ab, qr/backups: none started: this node may not back up now: .*standby/, 5),
	'the standby\'s agent says why it does not back up')
  or diag(slurp_file($ab->{log}));
unlike(slurp_file($ab->{log}), qr/backups: \w+ backup (done|failed|refused)/, 'and never started one');
is($a->safe_psql('postgres', "SELECT count(*) FROM ha_events WHERE kind = 'backup' AND NOT (detail->>'ok')::boolean"),
	'0', 'no backup failed');
# The first backup is followed by a restore test (one a day by default).
ok(agent_wait_log($aa, qr/backups: restore test passed: test-restore: passed in/, 30),
	'after its first backup the agent ran a restore test, which passed')
  or diag(slurp_file($aa->{log}));
is($a->safe_psql('postgres', "SELECT count(*) FROM ha_backups() WHERE restore_test_ok"), '1',
	'... recorded on that backup, and only one test (the next is a day away)');

# --- a switchover: the new primary continues with its own stanza ---
like($a->safe_psql('postgres', 'SELECT ha_failover()'), qr/bs_b is the primary/, 'switchover to bs_b');
ok(defined ha_wait_writable($b), 'bs_b writes');
ok(wait_made($b, 'bs_b', qr/^full incr/), 'the new primary\'s agent made a full backup of its stanza, then an incremental')
  or diag(made($b, 'bs_b'));
# A backup the old primary had in flight at the switchover may still end
# (or fail: its last step finds a standby); none may start after it. By
# now, a full backup later, a look made just before the switchover has
# logged its start.
my $a_done = made($a, 'bs_a');
my $starts = sub { scalar(() = slurp_file($aa->{log}) =~ /backups: \w+ backup of stanza bs_a due: starting it/g) };
my $a_started = $starts->();
ok(wait_made($b, 'bs_b', qr/^full incr incr/), 'and goes on with incrementals');
is(made($a, 'bs_a'), $a_done, 'the old primary\'s agent made no more');
is($b->safe_psql('postgres', "SELECT count(*) FROM ha_backups() WHERE stanza <> 'bs_b'"), '0',
	'the new primary backs up only its own stanza');
is($starts->(), $a_started, 'the old primary\'s agent started none after the switchover');
ok(agent_wait_log($aa, qr/backups: none started: this node may not back up now: .*standby/, 5),
	'the old primary\'s agent says it may not back up now')
  or diag(slurp_file($aa->{log}));

# --- the schedule alone: crawler-ha backup schedule ---
agent_kill($_) for @agents;
@agents = ();
my $sched_log = "$PostgreSQL::Test::Utils::log_path/511_backup_schedule_alone.log";
my @sched = ($ENV{CRAWLER_HA}, 'backup', 'schedule', '--db', 'host=' . $b->host . ' port=' . $b->port . ' dbname=postgres',
	'--store', PostgreSQL::Test::Utils::tempdir(), '--backup-config', $bk->{conf}{bs_b},
	'--backup-full-interval-s', 3600, '--backup-diff-interval-s', 0, '--backup-incr-interval-s', 5,
	'--backup-restore-test-interval-s', 0);
my $n_before = () = made($b, 'bs_b') =~ /incr/g;
my $sh = IPC::Run::start(\@sched, '>', $sched_log, '2>&1');
ok(wait_made($b, 'bs_b', qr/^full(?: incr){${\($n_before + 1)},}$/), 'backup schedule, without the agents, makes the next incremental');
$sh->signal('TERM');
$sh->finish;
is($? >> 8, 0, '... and exits 0 on SIGTERM');
my $sched_text = slurp_file($sched_log);
like($sched_text, qr/signal 15: stopping \(a backup in flight is waited for\)/, '... saying so');
like($sched_text, qr/backups: incr backup done: backup: incr /, '... after the backup it started had ended');
my ($o, $e) = ('', '');
IPC::Run::run([ $ENV{CRAWLER_HA}, 'backup', 'schedule', '--db', 'dbname=postgres' ], '>', \$o, '2>', \$e);
is($? >> 8, 2, 'backup schedule without backup_config: exit 2');
like($e, qr/backup_config is required/, '... saying so');

my $unit = slurp_file("$FindBin::RealBin/../../agent/crawler-ha-backup.service");
for my $key (qw(User=postgres SupplementaryGroups=crawler ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes
	KillSignal=SIGTERM RestartPreventExitStatus=2 CapabilityBoundingSet= SystemCallFilter=))
{
	like($unit, qr/^\Q$key\E/m, "crawler-ha-backup.service sets $key");
}
like($unit, qr{^ExecStart=/usr/local/bin/crawler-ha backup schedule --config /etc/crawler-ha-backup.conf$}m,
	'... and runs the schedule');
SKIP:
{
	my ($sa) = grep { -x $_ } map { "$_/systemd-analyze" } split /:/, $ENV{PATH};
	skip 'systemd-analyze is not installed', 1 unless $sa;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	(my $copy = $unit) =~ s{/usr/local/bin/crawler-ha}{$ENV{CRAWLER_HA}}g;
	open my $w, '>', "$dir/crawler-ha-backup.service" or die $!;
	print $w $copy;
	close $w;
	IPC::Run::run([ $sa, 'verify', '--man=no', "$dir/crawler-ha-backup.service" ], '>', \$o, '2>', \$e);
	is($? >> 8, 0, 'systemd-analyze verify accepts it') or diag $e;
}

done_testing();
