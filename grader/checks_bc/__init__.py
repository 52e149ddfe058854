"""The BC unit checks (``learning/bc_agent.py``), one module per TODO: the gradients and the value of
``BCAgent.compute_loss`` over several calls on one agent, each mistake named (:mod:`.loss`: a flipped sign, missing
normalization, a sum for a mean, a constant offset, ...); and the training loop ``BCAgent.fit`` (:mod:`.fit`: epochs of
shuffled minibatches, one step of ``self.optimizer`` per minibatch with that minibatch's gradient, the last epoch's mean
loss returned), watched through the reference loss and the optimizer.
"""
from grader.checks_bc.fit import BC_FIT
from grader.checks_bc.loss import BC_LOSS

CHECKS = (BC_LOSS, BC_FIT)
