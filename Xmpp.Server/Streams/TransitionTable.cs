using System.Runtime.CompilerServices;
using Xmpp.Core.Stanzas;

namespace Xmpp.Server.Streams;

/// <summary>The stream error the RFC names for an element out of place in a state.</summary>
public sealed record StreamRefusal(StreamErrorCondition Condition, string Reason);

/// <summary>One cell of a stream's transition table: an action when the element is legal, or the refusal.</summary>
public sealed record StreamRule<TAction>(TAction? Action, StreamRefusal? Refusal)
    where TAction : struct, Enum
{
    public bool IsLegal => Action is not null;

    public override string ToString() => Action is { } a ? a.ToString() : $"{Refusal!.Condition} ({Refusal.Reason})";
}

/// <summary>
/// A stream's transition table (state x kind of first-level element -> action or refusal), for the stream kinds
/// whose refusals are all stream errors (server-to-server in both directions, components). The state machine
/// reads it for every element and the tests iterate it; <see cref="Build"/> refuses a table with a cell left empty.
/// </summary>
/// <typeparam name="TState">The states, numbered from 0 without gaps.</typeparam>
/// <typeparam name="TKind">The kinds of element, numbered from 0 without gaps.</typeparam>
/// <typeparam name="TAction">What the machine does with a legal element.</typeparam>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1005", Justification = "A table is indexed by two enums and holds a third: all three are its subject.")]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1814", Justification = "A dense, rectangular table.")]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1000", Justification = "Do and Refuse are read through each table's alias (Table.Do, Table.Refuse): the rules name their action type once.")]
public sealed class TransitionTable<TState, TKind, TAction>
    where TState : struct, Enum
    where TKind : struct, Enum
    where TAction : struct, Enum
{
    private readonly StreamRule<TAction>?[,] _cells = new StreamRule<TAction>?[Enum.GetValues<TState>().Length, Enum.GetValues<TKind>().Length];

    public StreamRule<TAction> For(TState state, TKind kind) => _cells[Index(state), Index(kind)]!;

    /// <summary>Fills a state's row: <paramref name="all"/> for every kind but those named in <paramref name="cells"/>.</summary>
    public TransitionTable<TState, TKind, TAction> Row(TState state, StreamRule<TAction> all, params (TKind Kind, StreamRule<TAction> Rule)[] cells)
    {
        var s = Index(state);
        foreach (var kind in Enum.GetValues<TKind>())
        {
            _cells[s, Index(kind)] = all;
        }

        foreach (var (kind, rule) in cells)
        {
            _cells[s, Index(kind)] = rule;
        }

        return this;
    }

    /// <summary>The finished table; every state must have its row.</summary>
    public TransitionTable<TState, TKind, TAction> Build()
    {
        foreach (var state in Enum.GetValues<TState>())
        {
            if (_cells[Index(state), 0] is null)
            {
                throw new InvalidOperationException($"the transition table has no row for {state}");
            }
        }

        return this;
    }

    public static StreamRule<TAction> Do(TAction action) => new(action, null);

    public static StreamRule<TAction> Refuse(StreamErrorCondition condition, string reason) => new(null, new StreamRefusal(condition, reason));

    private static int Index<T>(T value)
        where T : struct, Enum => Unsafe.As<T, int>(ref value);
}
