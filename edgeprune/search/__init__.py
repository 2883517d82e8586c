"""Search stage: pymoo problems (flat NSGA-III and bi-level), evaluator, cache, checkpoints, picks.

Import the parts you need (``edgeprune.search.run.run_search``, ``edgeprune.search.front``...): this
package's ``__init__`` stays light.
"""
