//! The convergence plot: best, median and mean fitness (and the MSE against 1.0) against
//! evaluations, drawn as SVG by hand. A few hundred lines of `plotters` would draw the
//! same; this is a hundred, adds no dependency, and is the same drawing for the status
//! page (refreshed every second) and for `--plot FILE.svg`.

use std::fmt::Write;

/// One finished generation, as the plot and the status page show it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    /// The generation.
    pub generation: u32,
    /// Individuals evaluated so far.
    pub evaluations: u64,
    /// The best fitness so far.
    pub best: f64,
    /// This generation's median fitness.
    pub median: f64,
    /// This generation's mean fitness.
    pub mean: f64,
    /// This generation's mean squared error against 1.0.
    pub mse: f64,
    /// Seconds since the run started.
    pub seconds: f64,
}

/// The series drawn, in order: (class, legend, colour, dashed).
const SERIES: [(&str, &str, &str, bool); 4] = [
    ("best", "best", "#1b7f3b", false),
    ("median", "median", "#1f5fbf", false),
    ("mean", "mean", "#b35c00", false),
    ("mse", "MSE", "#888888", true),
];

fn value(p: &Point, series: &str) -> f64 {
    match series {
        "best" => p.best,
        "median" => p.median,
        "mean" => p.mean,
        _ => p.mse,
    }
}

/// Ticks for `[lo, hi]`: about five round numbers (1, 2 or 5 times a power of ten).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| span / s <= 7.0).unwrap_or(10.0 * power);
    let first = (lo / step).ceil();
    (0..12).map(|i| (first + f64::from(i)) * step).take_while(|t| *t <= hi + step * 1e-9).collect()
}

fn label(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 1.0 {
        format!("{}", (x * 100.0).round() / 100.0)
    } else {
        format!("{:.3}", x).trim_end_matches('0').to_string()
    }
}

/// Escapes text for XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plot's page: its size, the plot area's place and the data ranges it shows.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    top: f64,
    pw: f64,
    ph: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn sx(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.pw
    }

    fn sy(&self, y: f64) -> f64 {
        self.top + self.ph - (y - self.y.0) / (self.y.1 - self.y.0) * self.ph
    }

    /// The document's head (white page, `data-points`, the title), the grid with its round
    /// ticks, the plot area's border and the axes' names.
    fn draw(
        &self,
        out: &mut String,
        (width, height, points): (u32, u32, usize),
        title: &str,
        (x_name, y_name): (&str, &str),
    ) {
        let (w, h, left, top, pw, ph) = (self.w, self.h, self.left, self.top, self.pw, self.ph);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12" data-points="{points}"><rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
            escape(title)
        );
        for t in ticks(self.y.0, self.y.1) {
            let y = self.sy(t);
            let _ = write!(
                out,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                label(t)
            );
        }
        for t in ticks(self.x.0, self.x.1) {
            let x = self.sx(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 16.0,
                label(t)
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#555"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{x_name}</text><text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{y_name}</text>"##,
            left + pw / 2.0,
            h - 8.0,
            top + ph / 2.0,
            top + ph / 2.0
        );
    }
}

/// The plot of `points` as a standalone SVG document, `width` × `height` pixels, under
/// `title`. Each series is one `<polyline class="series-…">` with one vertex per point, in
/// order; fitness and MSE share the y axis (both lie in [0, 1]), scaled to the data.
pub fn svg(points: &[Point], title: &str, width: u32, height: u32) -> String {
    let (w, h) = (f64::from(width.max(200)), f64::from(height.max(150)));
    let (left, right, top, bottom) = (64.0, 16.0, 36.0, 44.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let x_max = points.iter().map(|p| p.evaluations as f64).fold(1.0, f64::max);
    let x_min = points.first().map_or(0.0, |p| p.evaluations as f64).min(x_max - 1.0);
    let ys = points.iter().flat_map(|p| SERIES.iter().map(move |s| value(p, s.0))).filter(|v| v.is_finite());
    let (mut y_min, mut y_max) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let (y_min, y_max) = ((y_min - pad).max(0.0), y_max + pad);
    let frame = Frame { w, h, left, top, pw, ph, x: (x_min, x_max), y: (y_min, y_max) };
    let (sx, sy) = (|x: f64| frame.sx(x), |y: f64| frame.sy(y));
    let mut out = String::with_capacity(1024 + points.len() * 4 * 16);
    frame.draw(&mut out, (width, height, points.len()), title, ("evaluations", "fitness"));
    // The series, then the legend.
    for (class, _, colour, dashed) in SERIES {
        let _ = write!(
            out,
            r#"<polyline class="series-{class}" fill="none" stroke="{colour}" stroke-width="1.6"{} points=""#,
            if dashed { r#" stroke-dasharray="4 3""# } else { "" }
        );
        for (i, p) in points.iter().enumerate() {
            let v = value(p, class);
            let v = if v.is_finite() { v } else { y_min };
            let _ = write!(out, "{}{:.1},{:.1}", if i == 0 { "" } else { " " }, sx(p.evaluations as f64), sy(v));
        }
        out.push_str(r#""/>"#);
    }
    // The legend sits in the top margin, right-aligned: no corner of the plot area is free
    // of lines for a whole run (fitness starts low and MSE high).
    let legend_left = (left + pw - 80.0 * SERIES.len() as f64).max(left + 200.0);
    for (i, (_, legend, colour, dashed)) in SERIES.iter().enumerate() {
        let x = legend_left + 80.0 * i as f64;
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="16" x2="{:.1}" y2="16" stroke="{colour}" stroke-width="2"{}/><text x="{:.1}" y="20">{legend}</text>"#,
            x + 18.0,
            if *dashed { r#" stroke-dasharray="4 3""# } else { "" },
            x + 22.0,
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A two-objective front as a standalone SVG scatter plot: one `<circle class="point">` per
/// point, first objective across, second up (both minimised), scaled to the points.
pub fn front_svg(points: &[[f64; 2]], title: &str, width: u32, height: u32) -> String {
    let (w, h) = (f64::from(width.max(200)), f64::from(height.max(150)));
    let (left, right, top, bottom) = (64.0, 16.0, 36.0, 44.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let finite: Vec<[f64; 2]> = points.iter().copied().filter(|p| p[0].is_finite() && p[1].is_finite()).collect();
    let range = |k: usize| {
        let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p[k]), b.max(p[k])));
        if lo.is_finite() && hi > lo {
            (lo - (hi - lo) * 0.03, hi + (hi - lo) * 0.03)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        }
    };
    let ((x0, x1), (y0, y1)) = (range(0), range(1));
    let frame = Frame { w, h, left, top, pw, ph, x: (x0, x1), y: (y0, y1) };
    let mut out = String::with_capacity(1024 + finite.len() * 64);
    frame.draw(&mut out, (width, height, finite.len()), title, ("objective 1", "objective 2"));
    for p in &finite {
        let _ = write!(
            out,
            r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f5fbf"/>"##,
            frame.sx(p[0]),
            frame.sy(p[1])
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: u32) -> Vec<Point> {
        (0..n)
            .map(|g| {
                let x = f64::from(g) / f64::from(n.max(1));
                Point {
                    generation: g,
                    evaluations: 100 * u64::from(g + 1),
                    best: 0.5 + 0.5 * x,
                    median: 0.4 + 0.4 * x,
                    mean: 0.3 + 0.5 * x,
                    mse: 0.3 * (1.0 - x),
                    seconds: f64::from(g),
                }
            })
            .collect()
    }

    fn vertices(doc: &roxmltree::Document, class: &str) -> Vec<(f64, f64)> {
        let line = doc
            .descendants()
            .find(|n| n.attribute("class") == Some(&format!("series-{class}")))
            .unwrap_or_else(|| panic!("no series {class}"));
        line.attribute("points")
            .unwrap()
            .split_whitespace()
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn the_svg_parses_and_has_one_vertex_per_generation_in_every_series() {
        let svg = svg(&points(37), "OneMax <100> & co", 800, 400);
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert_eq!(doc.root_element().attribute("data-points"), Some("37"));
        for class in ["best", "median", "mean", "mse"] {
            let v = vertices(&doc, class);
            assert_eq!(v.len(), 37, "{class}");
            // Evaluations grow left to right, inside the plot area.
            assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "{class}: {v:?}");
            assert!(v.iter().all(|&(x, y)| (64.0..=784.0).contains(&x) && (36.0..=356.0).contains(&y)), "{class}");
        }
        // Higher fitness is drawn higher (smaller y): best rises, MSE falls.
        let best = vertices(&doc, "best");
        assert!(best.first().unwrap().1 > best.last().unwrap().1);
        let mse = vertices(&doc, "mse");
        assert!(mse.first().unwrap().1 < mse.last().unwrap().1);
        assert!(svg.contains("OneMax &lt;100&gt; &amp; co"));
    }

    #[test]
    fn no_points_or_one_point_or_nan_still_draw_a_valid_document() {
        for n in [0, 1] {
            let svg = svg(&points(n), "t", 10, 10);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            assert_eq!(vertices(&doc, "best").len(), n as usize);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let mut p = points(3);
        p[1].median = f64::NAN;
        let svg = svg(&p, "t", 400, 300);
        roxmltree::Document::parse(&svg).unwrap();
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn a_front_is_one_circle_a_point_inside_the_plot() {
        let front: Vec<[f64; 2]> = (0..=20).map(|i| f64::from(i) / 20.0).map(|x| [x, 1.0 - x.sqrt()]).collect();
        let svg = front_svg(&front, "zdt1", 700, 500);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let circles: Vec<(f64, f64)> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("point"))
            .map(|n| (n.attribute("cx").unwrap().parse().unwrap(), n.attribute("cy").unwrap().parse().unwrap()))
            .collect();
        assert_eq!(circles.len(), 21);
        assert!(circles.iter().all(|&(x, y)| (64.0..=684.0).contains(&x) && (36.0..=456.0).contains(&y)));
        // Lower second objective is drawn lower on the page... higher y: the front falls.
        assert!(circles.first().unwrap().1 < circles.last().unwrap().1);
        roxmltree::Document::parse(&front_svg(&[], "empty", 10, 10)).unwrap();
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6, "{t:?}");
        assert!(t.iter().enumerate().all(|(i, x)| (x - 0.2 * i as f64).abs() < 1e-12), "{t:?}");
        let t = ticks(100.0, 123_456.0);
        assert!(t.len() >= 3 && t.len() <= 7, "{t:?}");
        assert!(t.iter().all(|x| x % 20_000.0 == 0.0), "{t:?}");
    }
}
