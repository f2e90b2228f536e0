// Test files named on the command line run alone (the inner loop); with none, the whole suite runs.
const named = process.argv.slice(2).some((arg) => /\.test\.js$/.test(arg));
module.exports = {
  spec: named ? [] : ['dist/test/**/*.test.js'],
  timeout: 20000,
  recursive: true,
  exit: true,
};
