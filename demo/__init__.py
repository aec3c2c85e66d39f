"""The offline demo (`python -m demo`, `make demo`): two nights of the whole job on the sample catalogue."""
