//! The classic extract → transform → load flow, with one task per step.

/// Gets the data: here, a fixed list, as an API call would return it.
#[weft::task(retries = 3, retry_delay = "1s")]
fn extract() -> Result<Vec<i64>, String> {
    weft::info!("extracting"; source = "inline");
    Ok(vec![1, 2, 3])
}

/// Multiplies every item by ten.
#[weft::task]
fn transform(data: Vec<i64>) -> Vec<i64> {
    data.into_iter().map(|x| x * 10).collect()
}

/// Loads the data: here, logs it.
#[weft::task]
fn load(data: &[i64]) {
    weft::info!("Here's your data: {:?}", data; rows = data.len());
}

#[weft::flow]
fn etl() -> Result<Vec<i64>, String> {
    let data = transform(extract()?);
    load(&data);
    Ok(data)
}
