%% The OTP side of the scale benchmark (see supervision/benches/scale.rs, which measures ours
%% the same way).
%%
%%   storm:   a fresh supervisor with N permanent brutal_kill workers; one process (this one)
%%            kills every worker at once, then waits until all N replacements have run their
%%            init (each stamps the time itself). Time = last stamp - instant before the first
%%            kill. A fresh supervisor per storm keeps the restart history to this storm's.
%%            one_for_one with N = 100 and N = 1,000; one_for_all with N = 1,000.
%%   dynamic: 10,000 children started one by one, each start_child returning once the child's
%%            init has run; then which_children and count_children at 10,000; then the
%%            supervisor is stopped (exit shutdown) and the time until it is gone is measured.
%%            Two OTP flavours: simple_one_for_one (start_child(Sup, []), children stopped
%%            concurrently) and one_for_one with a spec per child (start_child(Sup, Spec),
%%            children stopped one at a time in reverse start order, as ours are). Children
%%            are temporary, shutdown 5000 (a graceful stop; the worker does not trap exits).
%%   slow stop: 1,000 children that trap exits and sleep 1 ms before exiting on shutdown, then
%%            the time to stop the supervisor; same two flavours.
%%
%% Run: erlc otp_scale.erl && erl -noshell -run otp_scale main -s init stop
-module(otp_scale).
-behaviour(supervisor).
-export([main/0, init/1, start_worker/1, start_idle/0, worker_init/2, idle_init/1,
         start_slow/0, slow_init/1]).

-define(DYN, 10000).
-define(DYN_ROUNDS, 5).
-define(QUERY_SAMPLES, 20).
-define(SLOW, 1000).

init({storm, Strategy, N, Bench}) ->
    Flags = #{strategy => Strategy, intensity => 1000000, period => 3600},
    Children = [#{id => {w, I},
                  start => {?MODULE, start_worker, [Bench]},
                  restart => permanent,
                  shutdown => brutal_kill,
                  type => worker} || I <- lists:seq(1, N)],
    {ok, {Flags, Children}};
init(sofo) ->
    Flags = #{strategy => simple_one_for_one, intensity => 1, period => 5},
    Child = #{id => w,
              start => {?MODULE, start_idle, []},
              restart => temporary,
              shutdown => 5000,
              type => worker},
    {ok, {Flags, [Child]}};
init(ofo) ->
    {ok, {#{strategy => one_for_one, intensity => 1, period => 5}, []}};
init(slow_sofo) ->
    Flags = #{strategy => simple_one_for_one, intensity => 1, period => 5},
    {ok, {Flags, [slow_spec(w)]}};
init(slow_ofo) ->
    {ok, {#{strategy => one_for_one, intensity => 1, period => 5}, []}}.

slow_spec(Id) ->
    #{id => Id, start => {?MODULE, start_slow, []}, restart => temporary,
      shutdown => 5000, type => worker}.

%% Synchronous start like gen_server:start_link: returns once init has run.
start_worker(Bench) ->
    proc_lib:start_link(?MODULE, worker_init, [self(), Bench]).

worker_init(Parent, Bench) ->
    Bench ! {started, self(), erlang:monotonic_time(nanosecond)},
    proc_lib:init_ack(Parent, {ok, self()}),
    loop().

start_idle() ->
    proc_lib:start_link(?MODULE, idle_init, [self()]).

idle_init(Parent) ->
    proc_lib:init_ack(Parent, {ok, self()}),
    loop().

loop() ->
    receive _ -> loop() end.

%% A worker whose stop takes 1 ms: it traps exits and sleeps before exiting.
start_slow() ->
    proc_lib:start_link(?MODULE, slow_init, [self()]).

slow_init(Parent) ->
    process_flag(trap_exit, true),
    proc_lib:init_ack(Parent, {ok, self()}),
    slow_loop(Parent).

slow_loop(Parent) ->
    receive
        {'EXIT', Parent, Reason} -> timer:sleep(1), exit(Reason);
        _ -> slow_loop(Parent)
    end.

slow_round(Flavour) ->
    {ok, Sup} = supervisor:start_link(?MODULE, Flavour),
    unlink(Sup),
    lists:foreach(fun(I) ->
                          {ok, _} = case Flavour of
                                        slow_sofo -> supervisor:start_child(Sup, []);
                                        slow_ofo -> supervisor:start_child(Sup, slow_spec({w, I}))
                                    end
                  end, lists:seq(1, ?SLOW)),
    T0 = now_ns(),
    Ref = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end,
    now_ns() - T0.

report_slow(Label, Flavour) ->
    Stop = median([slow_round(Flavour) || _ <- lists:seq(1, ?DYN_ROUNDS)]),
    io:format("otp   slow1k ~-15s stop ~8.1f ms~n", [Label, Stop / 1.0e6]).

now_ns() -> erlang:monotonic_time(nanosecond).

stop_sup(Sup) ->
    unlink(Sup),
    Ref = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end.

%% Wait for N stamps; returns {Pids, LastStamp}.
stamps(0, Pids, Last) -> {Pids, Last};
stamps(N, Pids, Last) ->
    receive {started, Pid, T} -> stamps(N - 1, [Pid | Pids], max(T, Last)) end.

storm_rounds(Pids, 0, Acc) -> {Pids, Acc};
storm_rounds(Pids, K, Acc) ->
    T0 = now_ns(),
    lists:foreach(fun(P) -> exit(P, kill) end, Pids),
    {New, Last} = stamps(length(Pids), [], T0),
    storm_rounds(New, K - 1, [Last - T0 | Acc]).

%% A fresh supervisor per storm, so the restart history holds only this storm's restarts
%% (OTP walks its whole history on every restart; the long-history case is otp_restart.erl's).
storm(Strategy, N, Rounds) ->
    _ = storm_once(Strategy, N),                         % warm-up
    [storm_once(Strategy, N) || _ <- lists:seq(1, Rounds)].

storm_once(Strategy, N) ->
    {ok, Sup} = supervisor:start_link(?MODULE, {storm, Strategy, N, self()}),
    {Pids, _} = stamps(N, [], 0),
    {_, [Ns]} = storm_rounds(Pids, 1, []),
    stop_sup(Sup),
    Ns.

pct(Sorted, P) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, round(P * N))), Sorted).

median(Samples) -> pct(lists:sort(Samples), 0.5).

report_storm(Label, N, Samples) ->
    Sorted = lists:sort(Samples),
    Med = pct(Sorted, 0.5) / 1000,
    P99 = pct(Sorted, 0.99) / 1000,
    io:format("otp   ~-22s n=~-5B median ~10.1f us   p99 ~10.1f us   per restart ~7.2f us~n",
              [Label, length(Samples), Med, P99, Med / N]).

%% One dynamic round: {StartNs, FirstBlockNs, LastBlockNs, WhichNs, CountNs, StopNs}.
dyn_round(Flavour) ->
    {ok, Sup} = supervisor:start_link(?MODULE, Flavour),
    unlink(Sup),
    Block = ?DYN div 10,
    T0 = now_ns(),
    Marks = dyn_start(Flavour, Sup, 1, Block, [T0]),
    T1 = now_ns(),
    [Ta, Tb | _] = lists:reverse(Marks),
    [Lb, La | _] = Marks,
    ?DYN = proplists:get_value(active, supervisor:count_children(Sup)),
    Which = median([timed(fun() -> supervisor:which_children(Sup) end)
                    || _ <- lists:seq(1, ?QUERY_SAMPLES)]),
    Count = median([timed(fun() -> supervisor:count_children(Sup) end)
                    || _ <- lists:seq(1, ?QUERY_SAMPLES)]),
    T2 = now_ns(),
    Ref = monitor(process, Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, process, Sup, _} -> ok end,
    T3 = now_ns(),
    {T1 - T0, Tb - Ta, Lb - La, Which, Count, T3 - T2}.

timed(F) ->
    T0 = now_ns(),
    _ = F(),
    now_ns() - T0.

dyn_start(_Flavour, _Sup, I, _Block, Marks) when I > ?DYN -> Marks;
dyn_start(Flavour, Sup, I, Block, Marks) ->
    {ok, _} = case Flavour of
                  sofo -> supervisor:start_child(Sup, []);
                  ofo -> supervisor:start_child(Sup, #{id => {w, I},
                                                       start => {?MODULE, start_idle, []},
                                                       restart => temporary,
                                                       shutdown => 5000,
                                                       type => worker})
              end,
    Marks1 = case I rem Block of
                 0 -> [now_ns() | Marks];
                 _ -> Marks
             end,
    dyn_start(Flavour, Sup, I + 1, Block, Marks1).

report_dyn(Label, Rounds) ->
    Med = fun(K) -> median([element(K, R) || R <- Rounds]) end,
    Start = Med(1), First = Med(2), Last = Med(3),
    Which = Med(4), Count = Med(5), Stop = Med(6),
    io:format("otp   dyn10k ~-15s start ~8.1f ms (~6.2f us/child; first 1k ~6.2f, last 1k ~6.2f us/child)"
              "   stop ~8.1f ms (~6.2f us/child)   which_children ~8.1f us   count_children ~8.1f us~n",
              [Label, Start / 1.0e6, Start / 1000 / ?DYN,
               First / 1000 / (?DYN div 10), Last / 1000 / (?DYN div 10),
               Stop / 1.0e6, Stop / 1000 / ?DYN, Which / 1000, Count / 1000]).

main() ->
    %% A supervisor report per restart would measure the logger, not the supervisor.
    ok = logger:set_primary_config(level, none),
    io:format("Erlang/OTP ~s, ~B schedulers (scale)~n",
              [erlang:system_info(otp_release), erlang:system_info(schedulers)]),
    report_storm("storm one_for_one 100", 100, storm(one_for_one, 100, 1000)),
    report_storm("storm one_for_one 1000", 1000, storm(one_for_one, 1000, 200)),
    report_storm("storm one_for_all 1000", 1000, storm(one_for_all, 1000, 200)),
    _ = dyn_round(sofo),                                   % warm-up
    report_dyn("simple_1for1", [dyn_round(sofo) || _ <- lists:seq(1, ?DYN_ROUNDS)]),
    report_dyn("one_for_one", [dyn_round(ofo) || _ <- lists:seq(1, ?DYN_ROUNDS)]),
    report_slow("simple_1for1", slow_sofo),
    report_slow("one_for_one", slow_ofo).
