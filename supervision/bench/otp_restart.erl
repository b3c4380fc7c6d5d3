%% The OTP side of the restart benchmark (see supervision/benches/restart.rs, which measures
%% ours the same way): one_for_one supervisor, one permanent worker; kill the worker and time
%% from just before the kill until the replacement's init has run (it stamps the time itself).
%%
%%   short history: a fresh supervisor every 100 restarts, so OTP's restart list stays short;
%%   long history:  50,000 restarts first (intensity 1,000,000 in 3600 s), then measure.
%%
%% Run: erlc otp_restart.erl && erl -noshell -run otp_restart main -s init stop
-module(otp_restart).
-behaviour(supervisor).
-export([main/0, init/1, start_worker/1, worker_init/2]).

-define(BATCH, 100).
-define(SHORT_SAMPLES, 20000).
-define(PREFILL, 50000).
-define(LONG_SAMPLES, 2000).

init({Intensity, Period, Bench}) ->
    Flags = #{strategy => one_for_one, intensity => Intensity, period => Period},
    Child = #{id => worker,
              start => {?MODULE, start_worker, [Bench]},
              restart => permanent,
              shutdown => brutal_kill,
              type => worker},
    {ok, {Flags, [Child]}}.

%% Synchronous start like gen_server:start_link: returns once init has run.
start_worker(Bench) ->
    proc_lib:start_link(?MODULE, worker_init, [self(), Bench]).

worker_init(Parent, Bench) ->
    Bench ! {started, self(), erlang:monotonic_time(nanosecond)},
    proc_lib:init_ack(Parent, {ok, self()}),
    worker_loop().

worker_loop() ->
    receive _ -> worker_loop() end.

start_sup(Intensity, Period) ->
    {ok, Sup} = supervisor:start_link(?MODULE, {Intensity, Period, self()}),
    receive {started, Pid, _} -> {Sup, Pid} end.

stop_sup(Sup) ->
    unlink(Sup),
    Ref = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end.

%% Kill the worker, wait for the replacement; returns {NewPid, Nanoseconds}.
restart_once(Pid) ->
    T0 = erlang:monotonic_time(nanosecond),
    exit(Pid, kill),
    receive {started, New, T1} -> {New, T1 - T0} end.

samples(Pid, 0, Acc) -> {Pid, Acc};
samples(Pid, N, Acc) ->
    {New, Ns} = restart_once(Pid),
    samples(New, N - 1, [Ns | Acc]).

short_history() ->
    short_history(?SHORT_SAMPLES div ?BATCH, []).
short_history(0, Acc) -> Acc;
short_history(K, Acc) ->
    {Sup, Pid} = start_sup(1000000, 3600),
    {_, S} = samples(Pid, ?BATCH, []),
    stop_sup(Sup),
    short_history(K - 1, S ++ Acc).

long_history() ->
    {Sup, Pid0} = start_sup(1000000, 3600),
    {Pid1, _} = samples(Pid0, ?PREFILL, []),
    {_, S} = samples(Pid1, ?LONG_SAMPLES, []),
    stop_sup(Sup),
    S.

pct(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, round(P * N))), Sorted).

report(Label, Samples) ->
    Sorted = lists:sort(Samples),
    Med = pct(Sorted, 0.5) / 1000,
    P99 = pct(Sorted, 0.99) / 1000,
    io:format("otp   ~-14s n=~-6B median ~8.2f us   p99 ~8.2f us~n",
              [Label, length(Samples), Med, P99]),
    Med.

main() ->
    %% A supervisor report per restart would measure the logger, not the supervisor.
    ok = logger:set_primary_config(level, none),
    io:format("Erlang/OTP ~s, ~B schedulers~n",
              [erlang:system_info(otp_release), erlang:system_info(schedulers)]),
    %% Warm up the code paths once.
    _ = short_history(10, []),
    Short = report("short_history", short_history()),
    Long = report("long_history", long_history()),
    io:format("otp   long/short median ratio ~.2f~n", [Long / Short]).
