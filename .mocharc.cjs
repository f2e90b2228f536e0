module.exports = {
  spec: ['dist/test/**/*.test.js'],
  timeout: 20000,
  recursive: true,
  exit: true,
};
