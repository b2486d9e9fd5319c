# The Prometheus alerting rules, docs/prometheus/crawler_ha_alerts.yml:
# promtool accepts them and their unit tests
# (test/prometheus/crawler_ha_alerts_test.yml) pass; every metric they read
# is one the node agent serves (ha_metrics()'s list in
# extension/sql/75_metrics.sql or the agent's own in
# agent/src/server/metrics_route.cpp), and the unit tests' series carry the
# labels the agent gives them, so a metric renamed or relabelled there fails
# here; every alert is unit tested firing and not firing; and the example
# Alertmanager configuration routes every alert with its cooldown as
# repeat_interval (checked by amtool too where it is installed). No server
# is started.
use strict;
use warnings;
use FindBin;
use IPC::Run;
use Test::More;
use YAML::XS ();

my $promtool_bin = '/usr/bin/promtool';
my $amtool_bin = '/usr/bin/amtool';
plan skip_all => 'promtool is not installed (scripts/install-deps installs prometheus)' unless -x $promtool_bin;

# The tree: test/t/.. /.. (scripts/check runs the tests from a copy of it).
my $root = "$FindBin::RealBin/../..";
my $rules_rel = 'docs/prometheus/crawler_ha_alerts.yml';
my $tests_rel = 'test/prometheus/crawler_ha_alerts_test.yml';
my $am_rel = 'docs/prometheus/alertmanager_example.yml';
my $sql_rel = 'extension/sql/75_metrics.sql';
my $agent_rel = 'agent/src/server/metrics_route.cpp';
my @missing = grep { !-f "$root/$_" } ($rules_rel, $tests_rel, $am_rel, $sql_rel, $agent_rel);
if (@missing)
{
	fail("$_ is in the tree under test ($root)") for @missing;
	diag('scripts/check copies the tree to a temporary directory: it must copy these files too');
	done_testing();
	exit;
}

# run(@command): exit status and everything it printed (stdout, stderr).
sub run
{
	my ($out, $err) = ('', '');
	IPC::Run::run(\@_, '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return ($? >> 8, $out . $err);
}

sub slurp
{
	my ($path) = @_;
	open my $fh, '<', $path or die "$path: $!";
	local $/;
	return <$fh>;
}

my $rules_doc = YAML::XS::LoadFile("$root/$rules_rel");
my $tests_doc = YAML::XS::LoadFile("$root/$tests_rel");
my @groups = @{ $rules_doc->{groups} };
is_deeply([ map { $_->{name} } @groups ], ['crawler_ha'], "$rules_rel: one group, crawler_ha");
my @rules = map { @{ $_->{rules} } } @groups;
my @alert_names = do { my %seen; grep { !$seen{$_}++ } map { $_->{alert} // () } @rules };
is(scalar(grep { !defined $_->{alert} } @rules), 0, '... alerting rules only');
is_deeply(
	[ sort @alert_names ],
	[ sort qw(CrawlerHaDatabaseDown CrawlerHaReplicationLag CrawlerHaDiskUsage CrawlerHaFailover
		  CrawlerHaSwitchover CrawlerHaNodeFenced CrawlerHaConsistencyDifferences CrawlerHaFileSyncBehind
		  CrawlerHaNoPrimary CrawlerHaTwoPrimaries CrawlerHaBackupStale CrawlerHaBackupFailed
		  CrawlerHaRestoreTestFailed) ],
	'... the alerts: the specification\'s three and the HA core\'s own');

# --- promtool ---
my ($rc, $out) = run($promtool_bin, 'check', 'rules', "$root/$rules_rel");
is($rc, 0, 'promtool check rules: exit 0') or diag($out);
ok($out =~ /^\s*SUCCESS: ${\ scalar @rules} rules found\s*$/m, '... SUCCESS: ' . scalar(@rules) . ' rules found');
# Its lint (rules of one name with the same labels) prints FAILED but exits 0.
ok($out !~ /FAILED|lint|error/i, '... no lint error') or diag($out);

($rc, $out) = run($promtool_bin, 'test', 'rules', "$root/$tests_rel");
is($rc, 0, 'promtool test rules: exit 0') or diag($out);
ok($out =~ /^\s*SUCCESS\s*$/m, '... SUCCESS');
ok($out !~ /FAILED/, '... no test failed');

# --- every rule ---
my %severities = map { $_ => 1 } qw(critical warning info);
for my $r (@rules)
{
	my $what = "$r->{alert}" . ($r->{labels}{cause} ? " (cause $r->{labels}{cause})" : '');
	ok($severities{ $r->{labels}{severity} // '' }, "$what: severity $r->{labels}{severity}");
	for my $a (qw(summary description))
	{
		like($r->{annotations}{$a} // '', qr/\{\{ \$labels\.\w+ \}\}/, "... a $a naming its labels");
	}
}

# --- the metrics the rules read exist ---
# ha_metrics()'s def list: ('name', 'gauge' or 'counter', 'help').
my $sql = slurp("$root/$sql_rel");
my %db_metric = map { $_ => 1 } $sql =~ /\(\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)',\s*'(?:gauge|counter)',/g;
# The agent's own: add_own(out, "name", ...).
my $cpp = slurp("$root/$agent_rel");
my %agent_metric = map { $_ => 1 } $cpp =~ /add_own\(\s*out,\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"/g;
# What Prometheus adds to every target it scrapes.
my %prometheus_metric = map { $_ => 1 }
  qw(up scrape_duration_seconds scrape_samples_scraped scrape_samples_post_metric_relabeling scrape_series_added);
# The parsing itself must still work: the lists are as long as they were
# and hold the names every scrape has.
ok(keys(%db_metric) >= 30 && $db_metric{crawler_ha_up} && $db_metric{crawler_ha_node_role},
	"$sql_rel: ha_metrics()'s " . keys(%db_metric) . ' metric names found');
ok(keys(%agent_metric) >= 5 && $agent_metric{crawler_ha_database_up} && $agent_metric{crawler_ha_store_free_bytes},
	"$agent_rel: the agent's " . keys(%agent_metric) . ' own metric names found');

# selectors($expr): the metric names a PromQL expression selects: its
# identifiers outside strings, label matchers, ranges and label lists that
# are neither keywords nor called (functions, aggregations).
my %promql_keyword = map { $_ => 1 }
  qw(and or unless bool by without on ignoring group_left group_right offset inf nan start end);
sub selectors
{
	my ($expr) = @_;
	$expr =~ s/#[^\n]*//g;
	$expr =~ s/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/ /g;
	$expr =~ s/\{[^}]*\}/ /g;
	$expr =~ s/\[[^\]]*\]/ /g;
	$expr =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/ /g;
	my @names;
	while ($expr =~ /([0-9][0-9.]*(?:[eE][+-]?[0-9]+)?[a-zA-Z0-9_]*)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)
	{
		next if defined $1 || defined $3 || $promql_keyword{ lc $2 };
		push @names, $2;
	}
	return @names;
}

my %used;
for my $r (@rules)
{
	my @names = do { my %seen; grep { !$seen{$_}++ } selectors($r->{expr}) };
	ok(scalar(@names), "$r->{alert}: its expression selects " . join(', ', @names));
	$used{$_} = 1 for @names;
}
for my $name (sort keys %used)
{
	my $from = $db_metric{$name} ? 'ha_metrics()'
	  : $agent_metric{$name} ? 'the agent'
	  : $prometheus_metric{$name} ? 'Prometheus'
	  : 'nowhere';
	isnt($from, 'nowhere', "metric $name exists ($from)");
}

# The labels ha_metrics() gives each of its metrics: its sample rows,
# SELECT 'name', '{}' or pg_catalog.jsonb_build_object('label', value, ...).
my %db_labels;
my $sample_re = qr/SELECT\s+'([a-zA-Z_:][a-zA-Z0-9_:]*)',\s*
	(?:'\{\}'|pg_catalog\.jsonb_build_object\(((?:[^()]|\([^()]*\))*)\))/x;
while ($sql =~ /$sample_re/g)
{
	my ($name, $args) = ($1, $2 // '');
	$db_labels{$name} = join(',', sort($args =~ /'([a-zA-Z_][a-zA-Z0-9_]*)'\s*,/g));
}
ok($db_labels{crawler_ha_node_role} && $db_labels{crawler_ha_node_role} eq 'node,role',
	"$sql_rel: the labels of ha_metrics()'s samples found (crawler_ha_node_role: node, role)");

# The unit tests' series: metrics that exist, with the labels a scrape of
# the agent gives them (instance and job from Prometheus).
my (%series_ok, %fires, %quiet);
for my $t (@{ $tests_doc->{tests} })
{
	for my $s (@{ $t->{input_series} })
	{
		my ($name, $labels) = $s->{series} =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;
		my @l = sort grep { $_ ne 'instance' && $_ ne 'job' } (($labels // '') =~ /([a-zA-Z_][a-zA-Z0-9_]*)="/g);
		my $want = $db_metric{$name} ? $db_labels{$name} // '(no sample row found)' : '';
		my $ok = ($db_metric{$name} || $agent_metric{$name} || $prometheus_metric{$name}) && join(',', @l) eq $want
		  && ($labels // '') =~ /\binstance="/ && ($labels // '') =~ /\bjob="/;
		$series_ok{$s->{series}} = $ok;
	}
	for my $c (@{ $t->{alert_rule_test} })
	{
		if (@{ $c->{exp_alerts} // [] }) { $fires{ $c->{alertname} }++ } else { $quiet{ $c->{alertname} }++ }
	}
}
my @bad_series = grep { !$series_ok{$_} } sort keys %series_ok;
is_deeply(\@bad_series, [], "$tests_rel: its " . keys(%series_ok)
	  . ' input series are metrics the agent serves, with their labels and instance, job');
for my $alert (@alert_names)
{
	ok($fires{$alert} && $quiet{$alert}, "$alert is unit tested firing and not firing");
}

# --- the example Alertmanager configuration ---
my $am = YAML::XS::LoadFile("$root/$am_rel");

# route_for($route, %labels): the route an alert with these labels ends
# at (the first matching child, recursively, as Alertmanager without
# `continue`) and what it inherits: (route, repeat_interval, receiver).
sub matches
{
	my ($matcher, $labels) = @_;
	my ($l, $op, $v) = $matcher =~ /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$/
	  or die "matcher not understood: $matcher";
	my $have = $labels->{$l} // '';
	return $op eq '=' ? $have eq $v : $op eq '!=' ? $have ne $v : $op eq '=~' ? $have =~ /^(?:$v)$/ : $have !~ /^(?:$v)$/;
}

sub route_for
{
	my ($route, $labels, $repeat, $receiver) = @_;
	$repeat = $route->{repeat_interval} // $repeat;
	$receiver = $route->{receiver} // $receiver;
	for my $child (@{ $route->{routes} // [] })
	{
		next if grep { !matches($_, $labels) } @{ $child->{matchers} // [] };
		return route_for($child, $labels, $repeat, $receiver);
	}
	return ($route, $repeat, $receiver);
}

sub seconds
{
	my ($d) = @_;
	my %unit = (ms => 0.001, s => 1, m => 60, h => 3600, d => 86400, w => 604800);
	my $s = 0;
	$s += $1 * $unit{$2} while $d =~ /(\d+)(ms|s|m|h|d|w)/g;
	return $s;
}

# The specification's cooldowns (its three), the others those of the
# extension's own alerts (ha_alert_rules).
my %cooldown = (
	CrawlerHaDatabaseDown => 300,
	CrawlerHaReplicationLag => 600,
	CrawlerHaDiskUsage => 1800,
	CrawlerHaFailover => 300,
	CrawlerHaSwitchover => 300,
	CrawlerHaNodeFenced => 300,
	CrawlerHaNoPrimary => 300,
	CrawlerHaTwoPrimaries => 300,
	CrawlerHaFileSyncBehind => 900,
	CrawlerHaConsistencyDifferences => 1800,
	CrawlerHaBackupStale => 14400,
	CrawlerHaBackupFailed => 3600,
	CrawlerHaRestoreTestFailed => 14400);
is_deeply([ sort keys %cooldown ], [ sort @alert_names ], "$am_rel: a cooldown for every alert of the rules");
my %receiver_of = (critical => 'crawler-ha-oncall', warning => 'crawler-ha-team', info => 'crawler-ha-team');
for my $r (@rules)
{
	my %labels = (alertname => $r->{alert}, %{ $r->{labels} });
	my ($route, $repeat, $receiver) = route_for($am->{route}, \%labels);
	my $what = "$r->{alert}" . ($r->{labels}{cause} ? " (cause $r->{labels}{cause})" : '');
	ok(grep({ /alertname/ && /\Q$r->{alert}\E/ } @{ $route->{matchers} // [] }), "$what: a route of its own");
	is(seconds($repeat // ''), $cooldown{ $r->{alert} }, "... repeat_interval $repeat: its cooldown");
	is($receiver, $receiver_of{ $r->{labels}{severity} }, "... receiver $receiver for severity $r->{labels}{severity}");
}

SKIP:
{
	skip 'amtool is not installed (Debian package prometheus-alertmanager)', 2 + @rules unless -x $amtool_bin;
	($rc, $out) = run($amtool_bin, 'check-config', "$root/$am_rel");
	is($rc, 0, 'amtool check-config: exit 0') or diag($out);
	like($out, qr/SUCCESS/, '... SUCCESS');
	for my $r (@rules)
	{
		my @labels = map { "$_=$r->{labels}{$_}" } sort keys %{ $r->{labels} };
		my $want = $receiver_of{ $r->{labels}{severity} };
		($rc, $out) = run($amtool_bin, 'config', 'routes', 'test', "--config.file=$root/$am_rel",
			"--verify.receivers=$want", "alertname=$r->{alert}", @labels);
		is($rc, 0, "amtool config routes test alertname=$r->{alert} @labels: $want") or diag($out);
	}
}

done_testing();
