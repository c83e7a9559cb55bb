#!/usr/bin/env bash
# Profanity (terminal client, Debian's profanity) driven through tmux, as a person would type.
# Usage: profanity.sh HOST PORT JID PASSWORD PEER_JID
# Connects with STARTTLS forced, accepts the self-signed certificate for this session (/tls allow),
# waits for "logged in successfully", sends one message to PEER_JID and quits. Prints OK or FAIL.
set -u
host=$1 port=$2 jid=$3 password=$4 peer=$5
home=$(mktemp -d)
session="prof$$"
screen() { tmux capture-pane -t "$session" -p 2>/dev/null; }
wait_for() { # text, seconds
  for _ in $(seq 1 $(($2 * 5))); do
    screen | grep -q "$1" && return 0
    sleep 0.2
  done
  return 1
}
finish() {
  tmux kill-session -t "$session" 2>/dev/null
  rm -rf "$home"
  echo "$1"
  [[ "$1" == OK* ]]
  exit $?
}

tmux new-session -d -s "$session" -x 200 -y 50 "HOME=$home profanity" || finish "FAIL cannot start profanity in tmux"
wait_for "Type /help for help" 15 || finish "FAIL profanity did not start"
tmux send-keys -t "$session" "/connect $jid server $host port $port tls force" Enter
wait_for "password" 15 || finish "FAIL no password prompt"
tmux send-keys -t "$session" "$password" Enter
if wait_for "/tls allow" 15; then
  tmux send-keys -t "$session" "/tls allow" Enter
fi
wait_for "logged in successfully" 20 || finish "FAIL not logged in: $(screen | grep -v '^\s*$' | tail -3 | tr '\n' ' ')"
login=$(screen | grep -o '[^ ]* logged in successfully' | head -1)
tmux send-keys -t "$session" "/msg $peer hello from profanity" Enter
sleep 1
tmux send-keys -t "$session" "/quit" Enter
sleep 1
finish "OK $login, message sent"
