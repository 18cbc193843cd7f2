# mobility_twin: one-command setup, tests, demo. Run `make help` for the list.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := source env.sh &&

.PHONY: help setup test test-fast demo lint lock clean peers-env

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## create .venv/ and build ros2_ws/ (idempotent; re-run after pulling)
	@bash scripts/setup.sh

test:  ## run the whole test suite
	@$(ENV) python -m pytest tests

test-fast:  ## the tests that start no ROS process and are not slow
	@$(ENV) python -m pytest tests -m "not ros and not slow and not netns"

demo:  ## run the main job: the stack on the default scenario, then the SUMO city with route guidance and collision warning; reports in runs/<timestamp>/
	@$(ENV) mtwin demo && mtwin demo --scenario city_conflicts

lint:  ## ruff over the repository
	@$(ENV) ruff check .

lock:  ## re-pin requirements/constraints.txt from the current .venv
	@$(ENV) ( echo "# Lock file: exact versions of every package in .venv, from 'pip freeze --all' of a working setup."; \
	  echo "# Regenerate with: make lock   (after changing requirements/requirements.txt)"; \
	  pip freeze --all --exclude-editable | grep -v -E "^(-e|#|pip==)" | sort -f ) > requirements/constraints.txt

peers-env:  ## create .venv-peers/ with the peer trackers (norfair, motpy) for `mtwin bench trackers`
	@bash scripts/peers/setup_peers.sh

clean:  ## remove the build (keeps .venv)
	rm -rf ros2_ws/build ros2_ws/install ros2_ws/log
