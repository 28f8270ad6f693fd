//! The run's output: the original Exelixi's text report, or JSON lines.

use std::io::{self, Write};

use ga_core::{GenerationStats, Genome, Measure, Outcome};
use serde_json::json;

/// `x` as C's `%.2e` prints it (`1.45e-01`), which Rust's `{:.2e}` does not (`1.45e-1`).
pub fn sci(x: f64) -> String {
    let s = format!("{x:.2e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        }
        None => s, // inf, NaN
    }
}

/// A measure for people: whole numbers without a fraction, others to six significant digits.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { format!("{x:.6e}") }
}

/// One generation as the original printed it.
pub fn generation_line(s: &GenerationStats) -> String {
    format!(
        "gen\t{}\tsize\t{}\ttotal\t{}\tmse\t{}\tmax\t{}\tmed\t{}\tavg\t{}",
        s.generation,
        s.size,
        s.total_indiv,
        sci(s.mse),
        sci(s.max),
        sci(s.median),
        sci(s.mean)
    )
}

/// One generation as a JSON object.
pub fn generation_json(s: &GenerationStats) -> serde_json::Value {
    json!({
        "gen": s.generation,
        "size": s.size,
        "total": s.total_indiv,
        "mse": s.mse,
        "max": s.max,
        "med": s.median,
        "avg": s.mean,
        "best": s.best,
        "cutoff": s.cutoff,
        "duplicates": s.duplicates,
    })
}

/// Writes the final report: `indiv` lines, best first, or one JSON object; `measure` is the
/// problem's own measure of a genome (a tour's length…), printed after the original's fields.
pub fn write_outcome<G: Genome>(
    out: &mut impl Write,
    outcome: &Outcome<G>,
    as_json: bool,
    measure: &dyn Fn(&G) -> Option<Measure>,
) -> io::Result<()> {
    if as_json {
        let individuals: Vec<_> = outcome
            .report
            .iter()
            .map(|m| {
                let genome: serde_json::Value =
                    serde_json::from_str(&m.genome.to_json()).unwrap_or(serde_json::Value::Null);
                let mut individual =
                    json!({ "fitness": m.fitness, "born": m.born, "key": m.key.to_string(), "genome": genome });
                if let Some(x) = measure(&m.genome) {
                    individual["measure"] = json!({ "name": x.name, "value": x.value });
                }
                individual
            })
            .collect();
        let result = json!({ "result": {
            "stop": outcome.stop.as_str(),
            "generations": outcome.last.generation + 1,
            "evaluations": outcome.evaluations,
            "duplicates": outcome.duplicates,
            "cutoff": outcome.last.cutoff,
            "individuals": individuals,
        }});
        writeln!(out, "{result}")
    } else {
        for m in &outcome.report {
            write!(out, "indiv\t{:.4}\t{}\t{}", m.fitness, m.born, m.genome.to_json())?;
            match measure(&m.genome) {
                Some(x) => writeln!(out, "\t{}\t{}", x.name, number(x.value))?,
                None => writeln!(out)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sci_matches_c_printf() {
        assert_eq!(sci(0.145), "1.45e-01");
        assert_eq!(sci(0.996), "9.96e-01");
        assert_eq!(sci(1.0), "1.00e+00");
        assert_eq!(sci(0.0), "0.00e+00");
        assert_eq!(sci(1.0e-12), "1.00e-12");
        assert_eq!(sci(123456.0), "1.23e+05");
    }
}
