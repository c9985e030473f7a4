"""A contact's score as stored and read, below the capabilities that use it: its decay
arithmetic (decay.py), its stored state and rank keys (state.py), and contacts listed by
score at one moment (ranking.py). No I/O but ranking's reads; `contacts` lists by score,
`scoring` computes and writes scores, and neither imports the other for it."""
