# The node agents' Prometheus endpoint (GET /metrics on the HA port) read by
# Debian's real Prometheus. Two nodes with their agents: each exposition is
# checked by promtool, a crawl's families appear with their session label,
# the token rule holds, a Prometheus server scrapes both agents over TLS
# with the bearer token and its query API returns what the nodes say; with
# one node's PostgreSQL stopped its agent still answers, saying its database
# is down.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CrawlerHA::Test qw(ha_pair);
use CrawlerHA::Agent qw(agent_start agent_stop agent_kill agent_pki);

my $prometheus_bin = '/usr/bin/prometheus';
my $promtool_bin = '/usr/bin/promtool';
plan skip_all => 'CRAWLER_HA (the built crawler-ha) is not set' unless $ENV{CRAWLER_HA} && -x $ENV{CRAWLER_HA};
plan skip_all => 'prometheus is not installed (scripts/install-deps installs it)'
  unless -x $prometheus_bin && -x $promtool_bin;

my @agents;
my $prometheus;
END
{
	eval { $prometheus->kill_kill } if $prometheus;
	eval { agent_kill($_) } for @agents;
}

my ($a, $b) = ha_pair(names => [ 'metrics_a', 'metrics_b' ]);
my $aa = agent_start($a);
my $ab = agent_start($b);
push @agents, $aa, $ab;
my $pki = agent_pki();
# Each node learns its peer's term at its first health check of it.
for my $node ($a, $b)
{
	ok($node->poll_query_until('postgres',
			"SELECT count(*) FILTER (WHERE role = 'primary') = 1 AND count(*) FILTER (WHERE role = 'standby') = 1 "
			  . "AND count(DISTINCT term) = 1 FROM ha_status() WHERE role IN ('primary', 'standby')"),
		'node ' . $node->name . ' has checked its peer: one primary, one standby, one term');
}

# scrape($agent, @curl_args): (code, content type, body) of the agent's
# /metrics (the token sent unless --no-token is among the arguments).
sub scrape
{
	my ($agent, @args) = @_;
	my $no_token = grep { $_ eq '--no-token' } @args;
	@args = grep { $_ ne '--no-token' } @args;
	my $route = '/metrics';
	$route = shift @args if @args && $args[0] =~ m{^/};
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ 'curl', '-sS', '--cacert', $pki->{ca}, '-o', '-', '-w', '\n%{http_code} %{content_type}',
			($no_token ? () : ('-H', "Authorization: Bearer $pki->{token}")), @args, $agent->{ha_url} . $route ],
		'>', \$out, '2>', \$err);
	my ($body, $code, $type) = $out =~ /\A(.*)\n(\d{3}) ?([^\n]*)\z/s ? ($1, $2, $3) : ($out, '000', '');
	diag("curl $route: $err") if $code eq '000';
	return ($code, $type, $body);
}

# promtool_check($text): promtool check metrics' exit status and everything
# it printed (its lint problems; nothing when the exposition is clean).
sub promtool_check
{
	my ($text) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $promtool_bin, 'check', 'metrics' ], '<', \$text, '>', \$out, '2>', \$err);
	return ($? >> 8, $out . $err);
}

# sample($text, $name, $labels): the value of the sample `name{labels}` in
# an exposition ($labels as written, sorted by name: 'node="a"'; '' for
# none), or undef.
sub sample
{
	my ($text, $name, $labels) = @_;
	my $series = $labels eq '' ? quotemeta($name) : quotemeta("$name\{$labels}");
	return $text =~ /^$series (\S+)$/m ? $1 : undef;
}

my $type_re = qr{^text/plain; version=0\.0\.4; charset=utf-8$};

# --- the exposition, from each agent ---
for my $pair ([ 'a (primary)', $aa ], [ 'b (standby)', $ab ])
{
	my ($who, $agent) = @$pair;
	my ($code, $type, $text) = scrape($agent);
	is($code, '200', "node $who: GET /metrics: 200");
	like($type, $type_re, "... $type");
	my ($rc, $lint) = promtool_check($text);
	is($rc, 0, '... promtool check metrics accepts it');
	is($lint, '', '... and reports no problem') or diag($lint);
	is(sample($text, 'crawler_ha_agent_up', ''), '1', '... crawler_ha_agent_up 1');
	is(sample($text, 'crawler_ha_database_up', ''), '1', '... crawler_ha_database_up 1');
	is(sample($text, 'crawler_ha_up', 'node="' . $agent->{node}->name . '"'), '1',
		'... ha_metrics()\'s rows: crawler_ha_up with its node label');
	is(scalar(() = $text =~ /^crawler_ha_node_role\{node="[^"]+",role="primary"\} 1$/mg), 1,
		'... exactly one node with role="primary" in its view');
	ok(defined sample($text, 'crawler_ha_term', 'node="metrics_a"')
		  && sample($text, 'crawler_ha_term', 'node="metrics_a"') eq (sample($text, 'crawler_ha_term', 'node="metrics_b"') // ''),
		'... both nodes\' terms, equal');
	like(sample($text, 'crawler_ha_scrape_sql_duration_seconds', '') // '', qr/^[0-9.e+-]+$/,
		'... the SQL call\'s duration');
	is(sample($text, 'crawler_ha_scrape_samples_refused', ''), '0', '... no row of ha_metrics() refused');
	ok((sample($text, 'crawler_ha_store_size_bytes', '') // 0) > 0
		  && (sample($text, 'crawler_ha_store_free_bytes', '') // -1) >= 0
		  && sample($text, 'crawler_ha_store_free_bytes', '') <= sample($text, 'crawler_ha_store_size_bytes', ''),
		'... the store\'s file system: free <= size');
	ok((sample($text, 'process_resident_memory_bytes', '') // 0) > 0, '... process_resident_memory_bytes');
	like(sample($text, 'process_cpu_seconds_total', '') // '', qr/^\d+(\.\d+)?(e[+-]\d+)?$/,
		'... process_cpu_seconds_total');
	ok(abs((sample($text, 'process_start_time_seconds', '') // 0) - time) < 3600,
		'... process_start_time_seconds is a recent Unix time');
	my %help;
	$help{$1}++ while $text =~ /^# HELP (\S+) /mg;
	my %type;
	$type{$1}++ while $text =~ /^# TYPE (\S+) /mg;
	is(scalar(grep { $_ > 1 } values %help) + scalar(grep { $_ > 1 } values %type), 0,
		'... each family\'s HELP and TYPE once (' . scalar(keys %type) . ' families)');
}

# HEAD, a wrong method, a parameter.
my ($code, $type, $text) = scrape($aa, '-I');
is($code, '200', 'HEAD /metrics: 200');
unlike($text, qr/^crawler_ha_agent_up/m, '... without a body');
like($text, qr/^cache-control: no-store\r?$/mi, '... Cache-Control: no-store');
is((scrape($aa, '-X', 'POST'))[0], '405', 'POST /metrics: 405');
is((scrape($aa, '/metrics?x=1'))[0], '400', '/metrics?x=1: 400 (it takes no parameter)');

# --- a crawl: its families, labelled by session ---
$a->safe_psql('postgres', 'CREATE ROLE metrics_writer IN ROLE crawler_ha_writer');
my $sid = $a->safe_psql('postgres',
	"SET ROLE metrics_writer; SELECT crawl_start(ARRAY['http://a.example/'], '{}')");
like($sid, qr/^\d+$/, "crawl_start() as a writer: session $sid");
ok($b->poll_query_until('postgres', "SELECT count(*) = 1 FROM crawl_sessions WHERE id = $sid"),
	'... the standby has it');
for my $pair ([ 'a', $aa ], [ 'b', $ab ])
{
	my ($who, $agent) = @$pair;
	($code, $type, $text) = scrape($agent);
	is(sample($text, 'crawler_ha_crawl_queue_length', "session=\"$sid\""), '1',
		"node $who: crawler_ha_crawl_queue_length{session=\"$sid\"} 1 (the seed)");
	is(sample($text, 'crawler_ha_crawl_running', "session=\"$sid\""), '1', '... crawler_ha_crawl_running 1');
	is(sample($text, 'crawler_ha_crawl_pages_fetched_total', "session=\"$sid\""), '0',
		'... crawler_ha_crawl_pages_fetched_total 0');
	my ($rc, $lint) = promtool_check($text);
	ok($rc == 0 && $lint eq '', '... promtool still reports no problem') or diag($lint);
}

# --- the token rule: /metrics is a reader's route ---
agent_stop($ab);
agent_start($b, agent => $ab, args => ['--read-token-required']);
($code, undef, $text) = scrape($ab, '--no-token');
is($code, '401', 'read_token_required: /metrics without a token: 401');
is((scrape($ab, '--no-token', '-H', 'Authorization: Bearer wrong'))[0], '401', '... with a wrong token: 401');
is((scrape($ab))[0], '200', '... with the token: 200');
is((scrape($aa, '--no-token'))[0], '200', 'without read_token_required: 200 without a token');

# --- a real Prometheus scraping both agents over TLS, with the token ---
my $dir = PostgreSQL::Test::Utils::tempdir();
my $prom_port = PostgreSQL::Test::Cluster::get_free_port();
my %instance = (a => "127.0.0.1:$aa->{ha_port}", b => "127.0.0.1:$ab->{ha_port}");
open my $cf, '>', "$dir/prometheus.yml" or die $!;
print $cf <<"YML";
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: crawler_ha
    scheme: https
    tls_config:
      ca_file: $pki->{ca}
    authorization:
      credentials_file: $pki->{token_file}
    static_configs:
      - targets: ['$instance{a}', '$instance{b}']
YML
close $cf;
my ($out, $err) = ('', '');
IPC::Run::run([ $promtool_bin, 'check', 'config', "$dir/prometheus.yml" ], '>', \$out, '2>', \$err);
is($?, 0, 'promtool check config accepts the scrape configuration') or diag($out . $err);
my $prom_log = $PostgreSQL::Test::Utils::log_path . '/prometheus.log';
$prometheus = IPC::Run::start(
	[ $prometheus_bin, "--config.file=$dir/prometheus.yml", "--storage.tsdb.path=$dir/data",
		"--web.listen-address=127.0.0.1:$prom_port" ],
	'>', $prom_log, '2>&1');

# query($promql): the result vector of an instant query, as a list of
# { metric => {labels}, value => "v" }; () when Prometheus does not answer.
sub query
{
	my ($promql) = @_;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'curl', '-sS', '-m', '5', '--get', '--data-urlencode', "query=$promql",
			"http://127.0.0.1:$prom_port/api/v1/query" ], '>', \$o, '2>', \$e);
	my $doc = eval { decode_json($o) };
	return () unless $doc && ($doc->{status} // '') eq 'success';
	return map { { metric => $_->{metric}, value => $_->{value}[1] } } @{ $doc->{data}{result} };
}

# by_instance($promql): { instance => value } of a query's result (the
# last series of an instance when it has several).
sub by_instance
{
	my %v = map { $_->{metric}{instance} => $_->{value} } query($_[0]);
	return \%v;
}

# wait_for($what, $sub): polls $sub (true when done) for up to 60 s.
sub wait_for
{
	my ($sub) = @_;
	my $t0 = time;
	while (time - $t0 < 60)
	{
		return 1 if $sub->();
		sleep 0.25;
	}
	return 0;
}

my $up;
ok(wait_for(sub { $up = by_instance('up'); ($up->{ $instance{a} } // '') eq '1' && ($up->{ $instance{b} } // '') eq '1' }),
	'Prometheus scrapes both agents: up == 1 for both targets')
  or diag(explain($up), PostgreSQL::Test::Utils::slurp_file($prom_log));
my $db_up = by_instance('crawler_ha_database_up');
is_deeply([ @$db_up{ $instance{a}, $instance{b} } ], [ '1', '1' ], '... crawler_ha_database_up == 1 for both');

my @terms;
ok(wait_for(sub { @terms = query('crawler_ha_term'); scalar(@terms) == 4 }),
	'crawler_ha_term: both nodes\' terms as each agent reports them (4 series)')
  or diag(explain(\@terms));
is_deeply([ sort map { "$_->{metric}{instance} $_->{metric}{node}" } @terms ],
	[ sort map { my $i = $_; map { "$i $_" } qw(metrics_a metrics_b) } values %instance ],
	'... labelled instance and node, with both agents\' instances');
my %term_values = map { $_->{value} => 1 } @terms;
is(join(',', keys %term_values), '1', '... the term is the same everywhere (1)');

my @primary = query('crawler_ha_node_role{role="primary"}');
my %primary_views;
$primary_views{ $_->{metric}{instance} }{ $_->{metric}{node} }++ for @primary;
is_deeply(\%primary_views, { map { $_ => { metrics_a => 1 } } values %instance },
	'crawler_ha_node_role{role="primary"}: exactly one, node a, in each agent\'s view');
is_deeply(by_instance('count by (instance) (crawler_ha_node_role)'), { map { $_ => '2' } values %instance },
	'... and a role for each of the two nodes in each view');

my $queue;
ok(wait_for(sub { $queue = by_instance("crawler_ha_crawl_queue_length{session=\"$sid\"}"); keys(%$queue) == 2 }),
	"crawler_ha_crawl_queue_length{session=\"$sid\"} from both agents") or diag(explain($queue));
is_deeply($queue, { map { $_ => '1' } values %instance }, '... 1 on both');
my $rss = by_instance('process_resident_memory_bytes{job="crawler_ha"}');
ok(keys(%$rss) == 2 && !grep({ $_ <= 0 } values %$rss), 'process_resident_memory_bytes of both agents');

# --- node b's PostgreSQL stopped: its agent still answers ---
$b->stop('immediate');
($code, $type, $text) = scrape($ab);
is($code, '200', 'node b\'s PostgreSQL stopped: /metrics still 200');
is(sample($text, 'crawler_ha_database_up', ''), '0', '... crawler_ha_database_up 0');
is(sample($text, 'crawler_ha_agent_up', ''), '1', '... crawler_ha_agent_up 1');
unlike($text, qr/^crawler_ha_term/m, '... and no family of ha_metrics()');
ok(defined sample($text, 'crawler_ha_store_free_bytes', ''), '... the agent\'s own families still');
my ($rc, $lint) = promtool_check($text);
ok($rc == 0 && $lint eq '', '... promtool reports no problem') or diag($lint);
ok(wait_for(sub { (by_instance('crawler_ha_database_up')->{ $instance{b} } // '') eq '0' }),
	'Prometheus: crawler_ha_database_up == 0 for node b');
$up = by_instance('up');
is($up->{ $instance{b} }, '1', '... while up stays 1 for it (the node is there, its database is not)');
is($up->{ $instance{a} }, '1', '... and 1 for node a');
ok(wait_for(sub { !grep { $_->{metric}{instance} eq $instance{b} } query('crawler_ha_term') }),
	'... node b\'s crawler_ha_term series went stale');

$b->start;
ok($b->poll_query_until('postgres', "SELECT ok FROM ha_endpoint_check('replica')"), 'node b is back as a healthy replica');
ok(wait_for(sub { (by_instance('crawler_ha_database_up')->{ $instance{b} } // '') eq '1' }),
	'Prometheus: crawler_ha_database_up == 1 for node b again, without restarting its agent');

$prometheus->kill_kill;
undef $prometheus;
done_testing();
