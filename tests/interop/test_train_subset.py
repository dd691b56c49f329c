"""Section 1.14 of the spec: training a subset of parameters with data_structures.partition."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import senryu as hk

NUM_CLASSES = 10


def test_freezing_the_first_layer_trains_the_rest_to_the_identity():
    f = hk.transform(lambda x: hk.nets.MLP([300, 100, NUM_CLASSES])(x))
    params = f.init(jax.random.PRNGKey(42), np.zeros([NUM_CLASSES, NUM_CLASSES], np.float32))
    trainable, frozen = hk.data_structures.partition(
        lambda module, name, value: module != "mlp/~/linear_0", params)
    assert sorted(trainable) == ["mlp/~/linear_1", "mlp/~/linear_2"]
    assert sorted(frozen) == ["mlp/~/linear_0"]

    def loss_fn(trainable, frozen, x, y):
        logits = f.apply(hk.data_structures.merge(trainable, frozen), None, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(trainable)

    @jax.jit
    def step(trainable, opt_state, x, y):
        grads = jax.grad(loss_fn)(trainable, frozen, x, y)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(trainable, updates), opt_state

    # Inputs are one-hot class codes: the frozen random first layer keeps them separable, so
    # the two trained layers can learn the identity whatever the initial weights.
    rng = np.random.default_rng(0)
    for _ in range(100):
        y = rng.permutation(NUM_CLASSES)
        trainable, opt_state = step(trainable, opt_state, np.eye(NUM_CLASSES, dtype=np.float32)[y],
                                    y)

    final = hk.data_structures.merge(trainable, frozen)
    x = np.eye(NUM_CLASSES, dtype=np.float32)
    final_loss = float(loss_fn(trainable, frozen, x, np.arange(NUM_CLASSES)))
    assert final_loss < 0.05
    predictions = jnp.argmax(f.apply(final, None, x), axis=-1)
    np.testing.assert_array_equal(predictions, np.arange(NUM_CLASSES))
    # The frozen layer did not move; the others did.
    np.testing.assert_array_equal(final["mlp/~/linear_0"]["w"], params["mlp/~/linear_0"]["w"])
    assert not np.allclose(final["mlp/~/linear_2"]["w"], params["mlp/~/linear_2"]["w"])
