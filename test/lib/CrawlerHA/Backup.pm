# pgBackRest under a test pair: `crawler-ha backup setup` on each node into
# one shared repository, with the restart that turns archive_mode on done
# without a failover (paused, the standby first), as docs/backup.md tells an
# operator to.
package CrawlerHA::Backup;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run ();
use PostgreSQL::Test::Utils ();
use CrawlerHA::Test ();

our @EXPORT_OK = qw(backup_cli backup_setup_pair);

# backup_cli(@args): runs crawler-ha with @args; returns (exit status,
# stdout, stderr).
sub backup_cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ENV{CRAWLER_HA}, @_ ], '<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	return ($? >> 8, $o, $e);
}

# backup_setup_pair($primary, $standby): a new repository, a passphrase, and
# each node set up (configuration $dir/<node name>/pgbackrest.conf, its own
# log, lock and spool directories), the nodes restarted, set up again.
# Dies unless the second setup succeeds on both. Returns { dir, repo, pass,
# conf => { node name => configuration file } }.
sub backup_setup_pair
{
	my ($p, $s) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $pass = "$dir/pass";
	open my $f, '>', $pass or die "$pass: $!";
	print $f join('', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ int rand 62 ] } 1 .. 48), "\n";
	close $f;
	chmod 0600, $pass;
	my $b = { dir => $dir, repo => "$dir/repo", pass => $pass, conf => {} };
	my $setup = sub {
		my ($n) = @_;
		my $d = "$dir/" . $n->name;
		$b->{conf}{ $n->name } = "$d/pgbackrest.conf";
		return backup_cli('backup', 'setup', '--node', CrawlerHA::Test::ha_conninfo($n), '--pgdata',
			$n->data_dir, '--repo', $b->{repo}, '--passphrase-file', $pass, '--config', "$d/pgbackrest.conf",
			'--log-path', "$d/log", '--lock-path', "$d/lock", '--spool-path', "$d/spool");
	};
	$setup->($_) for ($p, $s);
	# archive_mode needs a restart; paused, so that neither restart is
	# taken for the primary's death.
	$_->safe_psql('postgres', 'SELECT ha_pause()') for ($p, $s);
	$s->restart;
	$p->restart;
	$_->safe_psql('postgres', 'SELECT ha_resume()') for ($p, $s);
	defined CrawlerHA::Test::ha_wait_writable($p) or die $p->name . ' does not write after its restart';
	for my $n ($p, $s)
	{
		my ($rc, $out, $err) = $setup->($n);
		die 'backup setup on ' . $n->name . ": exit $rc: $out$err" if $rc != 0;
	}
	return $b;
}

1;
