# The crawler-ha commands that steer the cluster, on a real pair, as an
# operator with the reader role (ops) and one with the admin role
# (opsadmin): events merged from both nodes' ha_events in time order (text,
# JSON Lines, --limit, --since, --follow), pause and resume on both nodes,
# a switchover there and back (and one refused), the client string of uri
# reaching the writable node, and all of it with one node stopped.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair ha_wait_writable);

plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};

my $follow;
END { eval { $follow->kill_kill } if $follow; }

my ($a, $b) = ha_pair(names => [ 'lb_a', 'lb_b' ]);
# Roles are per server: each node needs its own (the standby in a
# read-write transaction of its own).
my $roles = 'CREATE ROLE ops LOGIN IN ROLE crawler_ha_reader; CREATE ROLE opsadmin LOGIN IN ROLE crawler_ha_admin';
$a->safe_psql('postgres', $roles);
$b->safe_psql('postgres', "BEGIN READ WRITE; $roles; COMMIT");

my $servers = 'host=' . $a->host . ',' . $b->host . ' port=' . $a->port . ',' . $b->port . ' dbname=postgres';
my $ops = "$servers user=ops";
my $admin = "$servers user=opsadmin";

# cli(@args): (exit status, stdout, stderr) of crawler-ha.
sub cli
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ $ENV{CRAWLER_HA}, @_ ], '>', \$o, '2>', \$e, IPC::Run::timeout(180));
	return ($? >> 8, $o, $e);
}

# all_events(): [ "at node id" ] of both nodes' tables, in the order
# crawler-ha events promises (time in UTC, then node).
sub all_events
{
	my @rows;
	for my $n ($a, $b)
	{
		push @rows, split /\n/, $n->safe_psql('postgres',
			"SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US\"+00\"') || '|' || node || '|' || id "
			  . 'FROM ha_events');
	}
	return [ sort @rows ];
}

# json_events($stdout): the decoded lines, or undef when one is not JSON.
sub json_events
{
	my @ev;
	for (split /\n/, $_[0])
	{
		my $j = eval { decode_json($_) } or return undef;
		push @ev, $j;
	}
	return \@ev;
}

sub in_order
{
	my @keys = map { "$_->{at}|$_->{node}" } @{ $_[0] };
	return join("\n", @keys) eq join("\n", sort @keys);
}

# stable_cli(@args): cli(@args) run until no event was added while it ran
# (the HA workers may record one at any time), and both tables' events.
sub stable_cli
{
	my @r;
	for (1 .. 5)
	{
		my $before = all_events();
		@r = cli(@_);
		my $after = all_events();
		return (@r, $after) if join(',', @$before) eq join(',', @$after);
	}
	return (@r, all_events());
}

# --- events: both nodes' tables, merged ---
my ($rc, $out, $err, $all) = stable_cli('events', '--db', $ops);
is($rc, 0, 'events as the reader: exit 0') or diag($err);
my @lines = split /\n/, $out;
my $line_re = qr/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+00)  (lb_a|lb_b)  term (\d+)  (\w+)  (.*)$/;
is(scalar(grep { !/$line_re/ } @lines), 0, 'every line: time, node, term, kind, reason') or diag($out);
ok((grep { /  lb_a  term 1  setup  / } @lines) && (grep { /  lb_b  term 1  setup  / } @lines),
	'the setup events of both nodes are there');
my @keys = map { /$line_re/ ? "$1|$2" : '' } @lines;
is_deeply(\@keys, [ sort @keys ], 'in time order, then node');
my $total = scalar @$all;
is(scalar(@lines), $total < 50 ? $total : 50, "every event of both tables ($total)");

($rc, $out) = cli('events', '--db', $ops, '--json');
my $ev = json_events($out);
ok($ev && @$ev == @lines, '--json: one JSON object per line, as many as the text lines');
my @cols = qw(source id at term node kind reason duration_ms detail);
is(scalar(grep { my $e = $_; grep { !exists $e->{$_} } @cols } @{ $ev // [] }), 0, '... each with ' . join(', ', @cols));
my %sources = map { $_->{source} => 1 } @{ $ev // [] };
is(scalar(keys %sources), 2, '... from two sources (the servers)');
ok(in_order($ev // []), '... in time order');
is(ref($ev->[0]{detail}), 'HASH', '... detail as JSON, not text');

($rc, $out) = cli('events', '--db', $ops, '--json', '--limit', '1');
$ev = json_events($out);
is_deeply([ map { "$_->{at}|$_->{node}|$_->{id}" } @{ $ev // [] } ], [ $all->[-1] ], '--limit 1: the newest event');
for my $bad ('0', '10001', '-1', 'abc', '')
{
	($rc, $out, $err) = cli('events', '--db', $ops, '--limit', $bad);
	is($rc, 2, "--limit '$bad': exit 2");
}
is((cli('events', '--db', $ops, '--limit', '10000'))[0], 0, '--limit 10000: exit 0');

($rc, $out, $err) = cli('events', '--db', $ops, '--since', 'not a time');
is($rc, 2, '--since "not a time": exit 2');
like($err, qr/invalid input syntax.*SQLSTATE 22007/, '... with PostgreSQL\'s message: ' . $err);
($rc, $out, $err) = cli('events', '--db', $ops, '--since', '2026-13-45');
is($rc, 2, '--since 2026-13-45: exit 2');
like($err, qr/22008/, '... out of range: ' . $err);
($rc, $out) = cli('events', '--db', $ops, '--since', '2999-01-01 00:00+00');
is($rc . '|' . $out, '0|', '--since in the future: exit 0, no event');
my $last = (split /\|/, all_events()->[-1])[0];
($rc, $out) = cli('events', '--db', $ops, '--json', '--since', $last);
$ev = json_events($out);
ok($ev && @$ev >= 1 && !grep({ $_->{at} lt $last } @$ev), "--since $last: only events at or after it");

# --- pause and resume, followed by events --follow ---
my ($fo, $fe) = ('', '');
$follow = IPC::Run::start([ $ENV{CRAWLER_HA}, 'events', '--db', $ops, '--follow', '--limit', '1' ],
	'>', \$fo, '2>', \$fe);
my $t0 = time;
$follow->pump_nb, sleep 0.1 until $fo =~ /\n/ || time - $t0 > 30;
is(scalar(split /\n/, $fo), 1, 'events --follow first prints the newest (--limit 1)');

($rc, $out, $err) = cli('pause', '--db', $ops);
is($rc, 1, 'pause as the reader: exit 1');
like($out, qr/permission denied/, '... permission denied: ' . $out);
like($err, qr/not paused on/, '... and says where: ' . $err);
is($a->safe_psql('postgres', 'SELECT paused FROM ha_health()'), 'f', '... lb_a not paused');

($rc, $out, $err) = cli('pause', '--db', $admin);
is($rc, 0, 'pause as the admin: exit 0') or diag($out . $err);
is($out, "lb_a: paused\nlb_b: paused\n", '... each node\'s answer');
is($_->safe_psql('postgres', 'SELECT paused FROM ha_health()'), 't', '... ha_health() says paused on ' . $_->name)
  for ($a, $b);
$follow->pump_nb, sleep 0.1 until ($fo =~ /lb_a  term 1  pause  / && $fo =~ /lb_b  term 1  pause  /) || time - $t0 > 30;
like($fo, qr/lb_a  term 1  pause  .*\n.*lb_b  term 1  pause  |lb_b  term 1  pause  .*\n.*lb_a  term 1  pause  /,
	'events --follow shows the pause of both nodes as it comes');

($rc, $out) = cli('pause', '--db', $admin, '--json');
my $doc = eval { decode_json($out) };
ok($rc == 0 && $doc && $doc->{ok} && @{ $doc->{nodes} } == 2, 'pause --json again: one JSON object, ok');
($rc, $out) = cli('resume', '--db', $admin);
is($rc, 0, 'resume: exit 0');
is($out, "lb_a: resumed\nlb_b: resumed\n", '... each node\'s answer');
is($_->safe_psql('postgres', 'SELECT paused FROM ha_health()'), 'f', '... not paused on ' . $_->name) for ($a, $b);
$follow->pump_nb, sleep 0.1 until ($fo =~ /lb_b  term 1  resume  / && $fo =~ /lb_a  term 1  resume  /) || time - $t0 > 30;
like($fo, qr/resume/, '... and events --follow the resume');
$follow->signal('INT');
$follow->finish;
is($? >> 8, 0, 'events --follow ends on SIGINT with exit 0');
$follow = undef;
@lines = split /\n/, $fo;
is(scalar(grep { !/$line_re/ } @lines), 0, '... having printed only event lines') or diag($fo);
is($fe, '', '... and nothing on stderr');

# --- switchover there and back ---
($rc, $out, $err) = cli('switchover', '--db', $ops);
is($rc, 1, 'switchover as the reader: exit 1');
like($err, qr/42501|permission denied/, '... permission denied: ' . $err);

($rc, $out, $err) = cli('switchover', '--db', $admin, '--to', 'lb_b');
is($rc, 0, 'switchover --to lb_b: exit 0') or diag($out . $err);
like($out, qr/^lb_a: switched over: lb_b is the primary of term 2/m, '... the extension\'s answer: ' . (split /\n/, $out)[0]);
like($out, qr/^lb_b takes writes, [\d.]+ s after the switchover began$/m, '... and when lb_b took writes');
is($b->safe_psql('postgres', 'SELECT writable FROM ha_health()'), 't', 'lb_b is writable');
is($a->safe_psql('postgres', "SELECT role || ' ' || term FROM ha_state"), 'standby 2', 'lb_a is its standby, term 2');
($rc, $out) = cli('events', '--db', $ops, '--limit', '10000');
like($out, qr/  lb_a  term 2  switchover  switched over: lb_b is the primary of term 2/, 'events show the switchover');
like($out, qr/  lb_b  term \d  promotion  /, '... and lb_b\'s promotion, from lb_b\'s own table');

($rc, $out, $err) = cli('switchover', '--db', $admin, '--to', 'nosuchnode');
is($rc, 1, 'switchover --to nosuchnode: exit 1');
like($err, qr/SQLSTATE \w{5}: no standby named "nosuchnode"/, '... with the extension\'s message: ' . $err);
is($b->safe_psql('postgres', 'SELECT writable FROM ha_health()'), 't', '... and lb_b still writes');

($rc, $out, $err) = cli('switchover', '--db', $admin, '--to', 'lb_a', '--json');
$doc = eval { decode_json($out) };
is($rc, 0, 'switchover back with --to lb_a: exit 0') or diag($out . $err);
ok($doc && $doc->{ok} && $doc->{from} eq 'lb_b' && $doc->{new_primary} eq 'lb_a', '... --json: from lb_b to lb_a')
  or diag($out);
like($doc->{answer} // '', qr/lb_a is the primary of term 3/, '... the extension\'s answer in it');
is($a->safe_psql('postgres', 'SELECT writable FROM ha_health()'), 't', 'lb_a writes again');

# Both tables now hold pauses, resumes, fences, promotions...
($rc, $out, $err, $all) = stable_cli('events', '--db', $ops, '--json', '--limit', '5');
$ev = json_events($out);
my %from = map { (split /\|/)[1] => 1 } @$all[ -5 .. -1 ];
is_deeply([ map { "$_->{at}|$_->{node}|$_->{id}" } @{ $ev // [] } ], [ @$all[ -5 .. -1 ] ],
	'--limit 5: the newest 5 of the whole cluster (of ' . scalar(@$all) . ', from ' . join(' and ', sort keys %from)
	  . '), oldest first');

($rc, $out, $err) = cli('switchover', '--db', $admin, '--wait-s', '-1');
is($rc, 2, 'switchover --wait-s -1: exit 2');

# --- uri: the string clients use ---
for my $format ('conninfo', 'uri')
{
	($rc, $out, $err) = cli('uri', '--db', $ops, '--format', $format);
	chomp $out;
	is($rc, 0, "uri --format $format: exit 0 ($out)");
	like($out, qr/target_session_attrs=read-write/, '... asks for the writable node');
	my ($po, $pe) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', '-d', $out, '-c', 'SELECT node_name FROM ha_health()' ], '>', \$po, '2>', \$pe);
	chomp $po;
	is($po, 'lb_a', '... psql with it reaches the writable node') or diag($pe);
}
($rc, $out) = cli('uri', '--db', "$servers user=ops password=secret");
unlike($out, qr/secret|password/, 'uri never prints a password');
($rc, $out, $err) = cli('uri', '--db', 'host=a dbname=x', '--db', 'host=b dbname=y');
is($rc, 2, 'uri with two databases: exit 2 (' . $err . ')');

# --- one node stopped ---
($fo, $fe) = ('', '');
$follow = IPC::Run::start([ $ENV{CRAWLER_HA}, 'events', '--db', $ops, '--follow', '--connect-timeout', '1' ],
	'>', \$fo, '2>', \$fe);
$t0 = time;
$follow->pump_nb, sleep 0.1 until $fo =~ /\n/ || time - $t0 > 30;
$b->stop('fast');
$follow->pump_nb, sleep 0.1 until $fe =~ /does not answer/ || time - $t0 > 60;
sleep 3;    # three more polls
$follow->pump_nb;
my $bport = $b->port;
is(scalar(() = $fe =~ /:$bport\)? does not answer/g), 1, 'events --follow: lb_b gone, said once on stderr') or diag($fe);
$b->start;
$follow->pump_nb, sleep 0.1 until $fe =~ /answers now/ || time - $t0 > 60;
like($fe, qr/lb_b \(.*:$bport\) answers now/, '... and when it answers again');
$follow->signal('TERM');
$follow->finish;
is($? >> 8, 0, '... SIGTERM: exit 0');
$follow = undef;

ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'lb_b is back as a standby');
$b->stop('fast');
($rc, $out, $err) = cli('events', '--db', $ops, '--connect-timeout', '1');
is($rc, 0, 'events with lb_b stopped: exit 0');
like($out, qr/  lb_a  term 3  /, '... lb_a\'s events');
unlike($out, qr/  lb_b  /, '... none of lb_b\'s');
like($err, qr/:$bport\)? does not answer/, '... and on stderr that lb_b does not answer');

($rc, $out, $err) = cli('pause', '--db', $admin, '--connect-timeout', '1');
is($rc, 1, 'pause with lb_b stopped: exit 1');
like($out, qr/^lb_a: paused$/m, '... lb_a paused');
like($out, qr/^\S*:$bport: does not answer/m, '... lb_b\'s server does not answer');
like($err, qr/not paused on \S*:$bport .*must be paused when it returns/, '... named, to be paused when it returns: ' . $err);
($rc, $out, $err) = cli('resume', '--db', $admin, '--connect-timeout', '1');
is($rc, 1, 'resume with lb_b stopped: exit 1');

($rc, $out, $err) = cli('events', '--db', 'host=' . $b->host . ' port=' . $bport . ' dbname=postgres user=ops');
is($rc, 1, 'events with no node answering: exit 1');

done_testing();
