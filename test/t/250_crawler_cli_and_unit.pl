# The command line and the service unit: --help documents every option,
# mistakes are explained with exit status 2, the config file is read,
# `status` shows sessions, errors and ha_status(), and the systemd unit is
# hardened and passes `systemd-analyze verify`.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CrawlerHA::Test qw(new_node);

# Servers and workers started here are killed at exit, also when a test dies.
my @started;
END { eval { $_->kill_kill } for @started; }

my $worker = $ENV{CRAWLER_WORKER};
plan skip_all => 'CRAWLER_WORKER (the built crawler-worker) is not set' unless $worker && -x $worker;
my $root = "$FindBin::RealBin/../..";

sub run_worker
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $worker, @_ ], '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

my ($rc, $out, $err) = run_worker('--help');
is($rc, 0, '--help exits 0');
like($out, qr/^\s+crawl\s.*\n\s+run\s.*\n\s+status\s.*\n\s+export\s/m, '--help shows the four commands');
like($out, qr/COMMAND --help/, '... and where each command\'s options are');
# Each command's own help documents its options.
my %help;
for my $cmd (qw(crawl run status))
{
	($rc, $help{$cmd}, $err) = run_worker($cmd, '--help');
	is($rc, 0, "$cmd --help exits 0");
}
for my $opt (qw(db storage seed max-depth max-pages concurrency per-host allow-domain delay-ms
	images-any-host no-robots user-agent config worker-id lease-seconds timeout-ms
	connect-timeout-ms low-speed-seconds max-redirects max-image-bytes max-page-bytes max-pixels
	min-width min-height max-pending-writes))
{
	like($help{crawl}, qr/--\Q$opt\E\b/, "crawl --help documents --$opt");
}
like($help{status}, qr/--session\b/, 'status --help documents --session');
($rc, $help{export}, $err) = run_worker('export', '--help');
like($help{export}, qr/--session\b.*--format\b.*--output\b.*--shard-size\b.*--storage\b/s,
	'export --help documents its options');

($rc, $out, $err) = run_worker('crawl', '--db', 'dbname=x', '--storage', '/tmp');
is($rc, 2, 'a crawl without --seed is refused with status 2');
like($err, qr/at least one --seed/, '... and says why');
($rc, $out, $err) = run_worker('fly', '--db', 'x');
like($err, qr/unknown command "fly"/, 'an unknown command is named');
($rc, $out, $err) = run_worker('crawl', '--db', 'dbname=x', '--storage', '/tmp', '--seed', 'ftp://x/');
is($rc, 2, 'a seed that is not http(s) is refused');

my $node = new_node('cli');
$node->safe_psql('postgres', 'CREATE ROLE crawler LOGIN IN ROLE crawler_ha_writer');
my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres user=crawler';
# The defaults --help names are the extension's (crawl_settings() applies
# them when an option is not given): the help must say what happens.
{
	my ($hrc, $help) = run_worker('crawl', '--help');
	my %unit = ('MiB' => 1024 * 1024, 'million' => 1000000, '' => 1);
	for my $o ([ 'max-depth', 'max_depth' ], [ 'max-pages', 'max_pages' ], [ 'per-host', 'per_host' ],
		[ 'delay-ms', 'delay_ms' ], [ 'max-attempts', 'max_attempts' ],
		[ 'max-page-bytes', 'max_page_bytes' ], [ 'max-image-bytes', 'max_image_bytes' ],
		[ 'max-pixels', 'max_pixels' ], [ 'image-expiry-s', 'image_expiry_s' ])
	{
		my ($opt, $key) = @$o;
		# the option's own lines only (its description may wrap)
		my ($n, $u) = $help =~ /--\Q$opt\E\b(?:(?!\n\s*-).)*?\(default\s+(\d+)(?:\s+(MiB|million))?\)/s;
		my $sql = $node->safe_psql('postgres',
			"SELECT crawl_settings('{}', ARRAY['http://x.test/']) ->> '$key'");
		is(defined $n ? $n * $unit{ $u // '' } : 'missing', $sql, "--help names crawl_settings()'s default of --$opt");
	}
}

my $sid = $node->safe_psql('postgres', "SELECT crawl_start(ARRAY['http://127.0.0.1:9/'], '{\"robots\": false}')");

# the same options from a config file
my $dir = tempdir(CLEANUP => 1);
open my $c, '>', "$dir/worker.conf" or die $!;
print $c "db = $db\n";
close $c;
($rc, $out, $err) = run_worker('status', '--config', "$dir/worker.conf");
is($rc, 0, 'status with the conninfo from a config file') or diag $err;
like($out, qr/Sessions\n.*\bid\b.*\bstatus\b/s, 'status lists the sessions');
like($out, qr/^\s*$sid\s*\|\s*running/m, '... with the running session');
like($out, qr/Recent errors/, 'status has recent errors');
like($out, qr/ha_status\(\)/, 'status has ha_status()');

# the unit
my $unit = "$root/worker/crawler-worker.service";
open my $u, '<', $unit or die $!;
my $text = do { local $/; <$u> };
close $u;
for my $key (qw(User= ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes PrivateTmp=yes
	Restart=on-failure RestartPreventExitStatus=2 ExecReload= KillSignal=SIGTERM CapabilityBoundingSet=
	SystemCallFilter= Documentation=man:crawler-worker(1)))
{
	like($text, qr/^\Q$key\E/m, "the unit sets $key");
}
SKIP:
{
	my ($sa) = grep { -x $_ } map { "$_/systemd-analyze" } split /:/, $ENV{PATH};
	skip 'systemd-analyze is not installed', 1 unless $sa;
	(my $copy = $text) =~ s{/usr/local/bin/crawler-worker}{$worker}g;
	open my $w, '>', "$dir/crawler-worker.service" or die $!;
	print $w $copy;
	close $w;
	my ($o, $e) = ('', '');
	# verify runs man(1) for Documentation=man:...: the page as make
	# install installs it (scripts/check installs into a DESTDIR), else
	# that one check is left out.
	my $mandir = ($ENV{CRAWLER_HA_TESTS} // '') . '/installed/usr/local/share/man';
	my @man = -f "$mandir/man1/crawler-worker.1" ? () : ('--man=no');
	local $ENV{MANPATH} = "$mandir:" if !@man;
	IPC::Run::run([ $sa, 'verify', @man, "$dir/crawler-worker.service" ], '>', \$o, '2>', \$e);
	is($? >> 8, 0, 'systemd-analyze verify accepts the unit') or diag $e;
}

done_testing();
