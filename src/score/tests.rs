#[test]
fn three_decimals_writes_what_the_standard_formatter_writes() {
    for value in [
        0.0,
        0.211,
        16.0,
        0.0004,
        0.0006,
        1.23456,
        99.9996,
        123_456.789,
        -2.5,
        1e-9,
        7e14,
        3e15,
        f64::INFINITY,
        f64::NAN,
    ] {
        assert_eq!(
            super::three_decimals("S: ", value),
            format!("S: {value:.3}"),
            "{value}"
        );
    }
}
