//! The statistics `lab compare` reports: a Wilson score interval for a detection rate and
//! Fisher's exact test between two variants' rates. Written out here (a few lines each) rather
//! than taken from a statistics crate, whose linear-algebra dependencies would double the
//! build for two formulas.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `hits` successes in `n` trials, at normal quantile `z`.
/// `(0, 1)` when there are no trials.
pub fn wilson(hits: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (hits as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// ln(k!) for k in 0..=n.
fn ln_factorials(n: u64) -> Vec<f64> {
    let mut table = Vec::with_capacity(n as usize + 1);
    let mut acc = 0.0;
    table.push(0.0);
    for k in 1..=n {
        acc += (k as f64).ln();
        table.push(acc);
    }
    table
}

/// Two-sided Fisher exact test on the 2×2 table `[[a, b], [c, d]]` (rows: variants; columns:
/// runs with and without a report): the probability, with the margins fixed, of a table at
/// least as unlikely as this one.
pub fn fisher_two_sided(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let n = a + b + c + d;
    let (row1, col1) = (a + b, a + c);
    let lf = ln_factorials(n);
    // P(X = x) for the top-left cell under the hypergeometric distribution.
    let ln_p = |x: u64| {
        let (xb, xc) = (row1 - x, col1 - x);
        let xd = n + x - row1 - col1;
        lf[row1 as usize] + lf[(n - row1) as usize] + lf[col1 as usize] + lf[(n - col1) as usize]
            - lf[n as usize]
            - lf[x as usize]
            - lf[xb as usize]
            - lf[xc as usize]
            - lf[xd as usize]
    };
    let low = (row1 + col1).saturating_sub(n);
    let high = row1.min(col1);
    let observed = ln_p(a);
    // Relative tolerance, as R's fisher.test, so ties in floating point count as "as extreme".
    let cutoff = observed + 1e-7f64.ln_1p();
    let p: f64 = (low..=high)
        .map(ln_p)
        .filter(|&lp| lp <= cutoff)
        .map(f64::exp)
        .sum();
    p.min(1.0)
}

/// The median of `xs`; none when there are none. NaN sorts above every number and never
/// panics the sort.
/// A rate as shown: whole numbers from 10 up, two decimals below (a reproducer started once
/// in 30 s is 0.03/s, not 0/s).
pub fn rate(x: f64) -> String {
    if x.abs() >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605;
        // 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let (l, h) = wilson(k, n, Z95);
            assert!(
                close(l, lo, 5e-5) && close(h, hi, 5e-5),
                "{k}/{n}: {l:.4}–{h:.4}"
            );
        }
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        let (l, h) = wilson(20, 20, Z95);
        assert!(close(h, 1.0, 1e-12) && close(l, 0.8389, 5e-5), "{l}");
    }

    #[test]
    fn fisher_matches_known_values() {
        // Fisher's tea tasting: [[3, 1], [1, 3]] → 0.4857 (R: fisher.test).
        assert!(close(fisher_two_sided(3, 1, 1, 3), 0.485_714, 1e-6));
        // [[1, 9], [11, 3]] → 0.002759 (R's documentation example, Agresti).
        assert!(close(fisher_two_sided(1, 9, 11, 3), 0.002_759, 1e-6));
        // Identical rows: p = 1.
        assert!(close(fisher_two_sided(5, 5, 5, 5), 1.0, 1e-12));
        // 0/20 against 20/20: 2 / C(40, 20) = 1.45e-11.
        let p = fisher_two_sided(0, 20, 20, 0);
        assert!(close(p / 1.450_888_9e-11, 1.0, 1e-6), "{p:e}");
        // Symmetric in which row comes first.
        assert!(close(
            fisher_two_sided(2, 18, 19, 1),
            fisher_two_sided(19, 1, 2, 18),
            1e-15
        ));
    }

    #[test]
    fn median_of_odd_even_empty_and_nan() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        // NaN does not panic; it sorts last.
        assert_eq!(median(vec![f64::NAN, 1.0, 2.0]), Some(2.0));
    }
}
