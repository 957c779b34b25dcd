// The sample Compose app: App Links + QR → pair flow, bonding, sign requests, pairs.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

android {
    namespace = "xyz.sigilvault.sunstorm.sample"
    compileSdk = 35
    defaultConfig {
        applicationId = "xyz.sigilvault.sunstorm.sample"
        minSdk = 30
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    buildFeatures { compose = true }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"))
        }
    }
}

// The signed metadata bundle (metadata/bundle.cbor) ships as an app asset: data the core
// verifies at start, never compiled into the library.
val metadataAssets = layout.buildDirectory.dir("generated/metadata-assets")
val copyMetadataBundle by tasks.registering(Copy::class) {
    from(rootProject.file("../metadata/bundle.cbor"))
    into(metadataAssets.map { it.dir("metadata") })
}
android.sourceSets.getByName("main").assets.srcDir(metadataAssets)
tasks.named("preBuild") { dependsOn(copyMetadataBundle) }

dependencies {
    implementation(project(":sunstorm"))
    implementation(platform("androidx.compose:compose-bom:2024.12.01"))
    implementation("androidx.compose.material3:material3")
    implementation("androidx.compose.ui:ui")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-runtime-compose:2.8.7")
    // QR scanning: CameraX preview + analysis, ML Kit barcode scanning (bundled model).
    implementation("androidx.camera:camera-camera2:1.4.1")
    implementation("androidx.camera:camera-lifecycle:1.4.1")
    implementation("androidx.camera:camera-view:1.4.1")
    implementation("com.google.mlkit:barcode-scanning:17.3.0")
}
