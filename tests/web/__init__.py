"""Tests of pdserving.web: the app, its request checks and limits, the runner, fuzzing."""
