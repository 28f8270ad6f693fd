//! Whatever bytes arrive, decoding answers with an error or a value; it never panics.

use ga_core::problems::{OneMax, Sum231, Tsp};
use ga_core::{Candidate, Key, Origin, Problem, Rng, key_of};
use proptest::prelude::*;
use uow::ga::{self, GaConfig, Placement};
use worker_service::WorkError;

fn config<P: Problem>(problem: &P) -> GaConfig {
    GaConfig { problem: "x".into(), size: None, params: problem.params(), seed: 1, threads: 1 }
}

/// A valid batch of candidates owned by shard 0 of 2, encoded.
fn valid_batch() -> Vec<u8> {
    let p = Sum231::default();
    let placement = Placement::new(2);
    let mut rng = Rng::new(3);
    let batch: Vec<Candidate<Vec<i64>>> = (0..40u32)
        .map(|seq| {
            let genome = p.random_genome(&mut rng);
            Candidate { key: key_of(&genome), genome, born: 0, origin: Origin { shard: 1, seq }, fitness: None }
        })
        .filter(|c| placement.owner(c.key) == 0)
        .collect();
    uow::batch::encode_candidates(&batch).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_deliveries_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for job in [
            ga::job(Sum231::default(), config(&Sum231::default()), 0, 2).unwrap(),
            ga::job(OneMax { bits: 100 }, config(&OneMax::default()), 0, 2).unwrap(),
            ga::job(Tsp::berlin52(), config(&Tsp::berlin52()), 0, 2).unwrap(),
        ] {
            let _ = job.decoder().decode(&bytes);
        }
    }

    #[test]
    fn corrupted_valid_batches_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = valid_batch();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let job = ga::job(Sum231::default(), config(&Sum231::default()), 0, 2).unwrap();
        let _ = job.decoder().decode(&bytes);
    }

    #[test]
    fn arbitrary_phase_payloads_and_configs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = GaConfig::decode(&bytes);
        let mut job = ga::job(Sum231::default(), config(&Sum231::default()), 0, 1).unwrap();
        for phase in ["next", "report", "admit", "init", "bogus"] {
            let _ = job.phase(phase, &bytes, Vec::new());
        }
    }
}

#[test]
fn a_valid_batch_is_accepted_and_tampering_is_named() {
    let job = ga::job(Sum231::default(), config(&Sum231::default()), 0, 2).unwrap();
    assert!(job.decoder().decode(&valid_batch()).is_ok());

    let forged = vec![Candidate {
        genome: vec![1i64, 2, 3, 4, 5],
        key: Key(42),
        born: 0,
        origin: Origin { shard: 1, seq: 0 },
        fitness: None,
    }];
    let err = job.decoder().decode(&uow::batch::encode_candidates(&forged).unwrap()).err().unwrap();
    assert!(matches!(err, WorkError::Invalid { .. }) && err.to_string().contains("not the digest"), "{err}");

    let short = vec![1i64, 2];
    let wrong = vec![Candidate {
        key: key_of(&short),
        genome: short,
        born: 0,
        origin: Origin { shard: 1, seq: 0 },
        fitness: None,
    }];
    let err = job.decoder().decode(&uow::batch::encode_candidates(&wrong).unwrap()).err().unwrap();
    assert!(err.to_string().contains("2 genes, expected 5"), "{err}");

    // A fitness the breeder computed must be one.
    let mut batch: Vec<Candidate<Vec<i64>>> = uow::batch::decode_candidates(&valid_batch()).unwrap();
    batch.truncate(1);
    batch[0].fitness = Some(0.25);
    assert!(job.decoder().decode(&uow::batch::encode_candidates(&batch).unwrap()).is_ok());
    for bad in [1.5, -0.1, f64::NAN] {
        batch[0].fitness = Some(bad);
        let err = job.decoder().decode(&uow::batch::encode_candidates(&batch).unwrap()).err().unwrap();
        assert!(err.to_string().contains("is not in [0, 1]"), "{bad}: {err}");
    }

    let err = job.decoder().decode(&[0xff; 9]).err().unwrap();
    assert!(matches!(err, WorkError::Invalid { .. }), "{err}");
}
